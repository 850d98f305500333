"""A fake of the few GitHub REST endpoints the nightly's alert script calls, served on
127.0.0.1 from a thread, keeping its state (jobs of a run, issues, comments, labels, every
request) for the test to assert on.

Endpoints: list jobs for a workflow run; list, create and update issues; create an issue comment;
get and create a label. Lists page as GitHub does (``per_page``, ``page``, a ``Link`` header),
with pages of at most ``page_size`` items so a client that ignores paging misses items. Anything
else answers 404 and lands in ``unknown``."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

BODY_LIMIT = 65536  # GitHub refuses a longer issue or comment body

# (status, JSON payload, item count when the payload is one page of a list)
Answer = tuple[int, Any, int | None]


@dataclass
class Issue:
    number: int
    title: str
    body: str
    labels: list[str]
    state: str = "open"
    state_reason: str | None = None
    comments: list[str] = field(default_factory=list)

    def as_json(self, base: str) -> dict[str, Any]:
        return {"number": self.number, "title": self.title, "body": self.body,
                "state": self.state, "state_reason": self.state_reason,
                "labels": [{"name": name} for name in self.labels],
                "comments": len(self.comments), "html_url": f"{base}/issues/{self.number}"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"message": message, **extra}


def job(name: str, conclusion: str | None, steps: Mapping[str, str | None] | None = None,
        job_id: int = 0) -> dict[str, Any]:
    """A job as the API lists it; ``steps`` maps step name -> conclusion (None: not run)."""
    return {"id": job_id, "name": name, "conclusion": conclusion,
            "status": "completed" if conclusion else "in_progress",
            "steps": [{"number": n, "name": step, "conclusion": result,
                       "status": "completed" if result else "queued"}
                      for n, (step, result) in enumerate((steps or {}).items(), start=1)]}


class FakeGitHub:
    """One repository ``owner/repo`` behind ``url``; use as a context manager."""

    def __init__(self, owner: str = "acme", repo: str = "distro", token: str = "fake-token",
                 page_size: int = 2) -> None:
        self.owner, self.repo, self.token, self.page_size = owner, repo, token, page_size
        self.runs: dict[int, list[dict[str, Any]]] = {}
        self.issues: list[Issue] = []
        self.labels: dict[str, dict[str, Any]] = {}
        # labels a look-up reports missing although they exist: another run made them between
        # a client's look-up and its create
        self.hidden_labels: set[str] = set()
        self.requests: list[Request] = []
        self.unknown: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def add_issue(self, title: str, body: str, labels: list[str] | None = None) -> Issue:
        issue = Issue(len(self.issues) + 1, title, body, list(labels or []))
        self.issues.append(issue)
        return issue

    def issue(self, number: int) -> Issue:
        return self.issues[number - 1]

    def writes(self) -> list[Request]:
        """The requests that changed something (everything but GET)."""
        return [r for r in self.requests if r.method != "GET"]

    def answer(self, method: str, path: str, query: dict[str, str],
               body: dict[str, Any]) -> Answer:
        """What the API answers one request."""
        with self._lock:
            self.requests.append(Request(method, path, body))
            for pattern, verb, route in self._routes():
                match = re.fullmatch(pattern, path)
                if match and verb == method:
                    return route(query, body, *map(unquote, match.groups()))
            self.unknown.append(f"{method} {path}")
            raise ApiError(404, "Not Found")

    def _routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        repo = f"/repos/{re.escape(self.owner)}/{re.escape(self.repo)}"
        return [(rf"{repo}/actions/runs/(\d+)/jobs", "GET", self._list_jobs),
                (rf"{repo}/issues", "GET", self._list_issues),
                (rf"{repo}/issues", "POST", self._create_issue),
                (rf"{repo}/issues/(\d+)", "PATCH", self._update_issue),
                (rf"{repo}/issues/(\d+)/comments", "POST", self._comment),
                (rf"{repo}/labels/([^/]+)", "GET", self._get_label),
                (rf"{repo}/labels", "POST", self._create_label)]

    def _list_jobs(self, query: dict[str, str], body: dict[str, Any],
                   run: str) -> tuple[int, Any, int]:
        jobs = self.runs.get(int(run))
        if jobs is None:
            raise ApiError(404, "Not Found")
        page = self._page(jobs, query)
        return 200, {"total_count": len(jobs), "jobs": page}, len(jobs)

    def _list_issues(self, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any, int]:
        state = query.get("state", "open")
        wanted = {name for name in query.get("labels", "").split(",") if name}
        found = [i for i in reversed(self.issues)
                 if state in ("all", i.state) and wanted <= set(i.labels)]
        return 200, [i.as_json(self._html()) for i in self._page(found, query)], len(found)

    def _create_issue(self, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any, None]:
        _check_body(body)
        for name in body.get("labels", []):
            self.labels.setdefault(name, {"name": name, "color": "ededed", "description": None})
        issue = self.add_issue(body["title"], body.get("body", ""), body.get("labels", []))
        return 201, issue.as_json(self._html()), None

    def _update_issue(self, query: dict[str, str], body: dict[str, Any],
                      number: str) -> tuple[int, Any, None]:
        _check_body(body)
        issue = self._find(number)
        for key in ("title", "body", "state", "state_reason"):
            if key in body:
                setattr(issue, key, body[key])
        if "labels" in body:
            issue.labels = list(body["labels"])
        return 200, issue.as_json(self._html()), None

    def _comment(self, query: dict[str, str], body: dict[str, Any],
                 number: str) -> tuple[int, Any, None]:
        _check_body(body)
        issue = self._find(number)
        issue.comments.append(body["body"])
        return 201, {"id": len(issue.comments), "body": body["body"]}, None

    def _get_label(self, query: dict[str, str], body: dict[str, Any],
                   name: str) -> tuple[int, Any, None]:
        if name not in self.labels or name in self.hidden_labels:
            raise ApiError(404, "Not Found")
        return 200, self.labels[name], None

    def _create_label(self, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any, None]:
        if body["name"] in self.labels:
            raise ApiError(422, "Validation Failed", errors=[
                {"resource": "Label", "code": "already_exists", "field": "name"}])
        self.labels[body["name"]] = {key: body.get(key) for key in ("name", "color", "description")}
        return 201, self.labels[body["name"]], None

    def _find(self, number: str) -> Issue:
        if not 0 < int(number) <= len(self.issues):
            raise ApiError(404, "Not Found")
        return self.issue(int(number))

    def _page(self, items: list[Any], query: dict[str, str]) -> list[Any]:
        size = min(int(query.get("per_page", "30")), self.page_size)
        start = (int(query.get("page", "1")) - 1) * size
        return items[start:start + size]

    def _html(self) -> str:
        return f"https://github.example/{self.owner}/{self.repo}"


def _check_body(body: dict[str, Any]) -> None:
    if len(body.get("body") or "") > BODY_LIMIT:
        raise ApiError(422, "Validation Failed", errors=[
            {"resource": "Issue", "code": "custom", "field": "body",
             "message": f"body is too long (maximum is {BODY_LIMIT} characters)"}])


def _handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            try:
                if self.headers.get("Authorization", "").split(" ")[-1] != fake.token:
                    raise ApiError(401, "Bad credentials")
                status, payload, total = fake.answer(self.command, parts.path, query, body)
            except ApiError as error:
                self._send(error.status, error.payload)
                return
            self._send(status, payload, self._next_link(parts.path, query, total))

        def _next_link(self, path: str, query: dict[str, str], total: int | None) -> str | None:
            if total is None:
                return None
            size = min(int(query.get("per_page", "30")), fake.page_size)
            page = int(query.get("page", "1"))
            if page * size >= total:
                return None
            return f'<{fake.url}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"'

        def _send(self, status: int, payload: Any, link: str | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if link:
                self.send_header("Link", link)
            self.end_headers()
            self.wfile.write(data)

    return Handler
