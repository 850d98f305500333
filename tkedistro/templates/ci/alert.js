// The nightly's alert: the body of an actions/github-script `script:` (an async function body;
// in scope: github, context, core, require). For each release line in TKEDISTRO_RELEASES it
// reads the conclusion of the job `nightly <release>` in this run:
// - failure or timed_out: update the open issue "nightly: <release> failing" that carries the
//   label tkedistro-nightly (body replaced, comment "failed again: <run url>"), or open one with
//   that label. The body has the run link, the failed steps, the forecast table and the last
//   lines of each failed step's log (reports/nightly-<release>/...).
// - success: comment "green again: <run url>" on that labelled issue and close it.
// - skipped, cancelled, missing: touch nothing.
// An issue without the label was not opened by tkedistro: it is never read for updates,
// commented on, edited or closed.
// Rendered into a workflow: never write a GitHub expression opener (dollar, two braces) or the
// renderer's delimiters (two square brackets, square bracket + percent or hash) in this file.
const fs = require("fs");
const path = require("path");

const LABEL = "tkedistro-nightly";
const LABEL_COLOR = "b60205";
const LABEL_TEXT = "Opened by the tkedistro nightly; closed by it when the night is green";
const LOG_LINES = 60;
const FORECAST_CHARS = 16000;
// GitHub refuses an issue body over 65536 characters; keep a margin for what the fences add
const BODY_LIMIT = 60000;
const FAILED = new Set(["failure", "timed_out"]);

const releases = JSON.parse(process.env.TKEDISTRO_RELEASES || "[]");
const { owner, repo } = context.repo;
const runUrl = `${context.serverUrl}/${owner}/${repo}/actions/runs/${context.runId}`;

// the log file name the nightly gives a step: lowercase, runs of other characters become "-"
function slug(name) {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
}

function readOrNull(file) {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    if (err.code === "ENOENT") return null;
    throw err;
  }
}

// the last `lines` lines of text, then at most its last `chars` characters
function tail(text, lines, chars) {
  let all = text.replace(/\s+$/, "").split("\n");
  let note = "";
  if (all.length > lines) {
    note = `(${all.length - lines} earlier lines not shown)\n`;
    all = all.slice(-lines);
  }
  let kept = all.join("\n");
  if (kept.length > chars) {
    kept = kept.slice(kept.length - Math.max(chars, 0)).replace(/^[\uDC00-\uDFFF]/, "");
    note = "(cut to the last characters to fit the issue)\n";
  }
  return note + kept;
}

// the first `chars` characters of text
function head(text, chars) {
  const trimmed = text.replace(/\s+$/, "");
  if (trimmed.length <= chars) return trimmed;
  return trimmed.slice(0, chars).replace(/[\uD800-\uDBFF]$/, "") + "\n(cut to fit the issue)";
}

// a fenced code block whose fence is longer than any run of backticks inside
function codeBlock(text) {
  const runs = text.match(/`+/g) || [];
  const fence = "`".repeat(Math.max(3, ...runs.map((r) => r.length + 1)));
  return `${fence}\n${text}\n${fence}`;
}

function failedSteps(job) {
  const steps = job.steps || [];
  let failed = steps.filter((s) => FAILED.has(s.conclusion));
  // a job that ran out of time reports the step it stopped in as cancelled
  if (failed.length === 0 && job.conclusion === "timed_out") {
    failed = steps.filter((s) => s.conclusion === "cancelled" || s.status !== "completed");
  }
  return failed.map((s) => s.name);
}

function issueBody(release, job, steps) {
  const dir = path.join("reports", `nightly-${release}`);
  const forecast = readOrNull(path.join(dir, "forecast.txt"));
  const top = [
    `The nightly of release line ${release} failed (${job.conclusion}): ${runUrl}`,
    "",
    `Failed steps: ${steps.join(", ") || "(the job reports no failed step)"}`,
    "",
    "Forecast of the patch series onto newer upstream tags:",
    "",
    forecast === null ? "(no forecast this night)" : codeBlock(head(forecast, FORECAST_CHARS)),
  ].join("\n");
  const logs = steps.map((name) => [name, readOrNull(path.join(dir, "logs", `${slug(name)}.log`))]);
  const overhead = logs.reduce((n, [name]) => n + name.length + 120, 0);
  const share = Math.floor((BODY_LIMIT - top.length - overhead) / Math.max(logs.length, 1));
  const sections = logs.map(([name, log]) => {
    const shown = log === null ? "(no log uploaded)" : codeBlock(tail(log, LOG_LINES, share));
    return `### Step "${name}": the last lines of its log\n\n${shown}`;
  });
  return head([top, ...sections].join("\n\n"), BODY_LIMIT);
}

function carriesLabel(issue) {
  return (issue.labels || []).some((l) => (typeof l === "string" ? l : l.name) === LABEL);
}

// the open issue tkedistro opened for this title; an issue without the label is not ours
async function findOwnIssue(title) {
  const open = await github.paginate(github.rest.issues.listForRepo,
    { owner, repo, state: "open", labels: LABEL, per_page: 100 });
  const ours = open.filter((i) => !i.pull_request && i.title === title && carriesLabel(i));
  ours.sort((a, b) => a.number - b.number);
  return ours.length > 0 ? ours[0] : null;
}

async function ensureLabel() {
  try {
    await github.rest.issues.getLabel({ owner, repo, name: LABEL });
    return;
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  try {
    await github.rest.issues.createLabel(
      { owner, repo, name: LABEL, color: LABEL_COLOR, description: LABEL_TEXT });
    core.info(`created the label ${LABEL}`);
  } catch (err) {
    // another run created it in between
    if (err.status !== 422) throw err;
  }
}

async function alertFailure(release, job) {
  const title = `nightly: ${release} failing`;
  const steps = failedSteps(job);
  const body = issueBody(release, job, steps);
  const issue = await findOwnIssue(title);
  if (issue) {
    await github.rest.issues.update({ owner, repo, issue_number: issue.number, body });
    await github.rest.issues.createComment(
      { owner, repo, issue_number: issue.number, body: `failed again: ${runUrl}` });
    core.info(`${release}: ${job.conclusion}; updated issue #${issue.number} "${title}"`);
    return;
  }
  await ensureLabel();
  const made = await github.rest.issues.create({ owner, repo, title, body, labels: [LABEL] });
  core.info(`${release}: ${job.conclusion}; opened issue #${made.data.number} "${title}"`);
}

async function alertSuccess(release) {
  const title = `nightly: ${release} failing`;
  const issue = await findOwnIssue(title);
  if (!issue) {
    core.info(`${release}: success; no open issue "${title}" labelled ${LABEL}, nothing to do`);
    return;
  }
  await github.rest.issues.createComment(
    { owner, repo, issue_number: issue.number, body: `green again: ${runUrl}` });
  await github.rest.issues.update(
    { owner, repo, issue_number: issue.number, state: "closed", state_reason: "completed" });
  core.info(`${release}: success; closed issue #${issue.number} "${title}"`);
}

async function alertRelease(release, jobs) {
  const job = jobs.find((j) => j.name === `nightly ${release}`);
  if (!job) {
    core.info(`${release}: no job "nightly ${release}" in this run; nothing to do`);
  } else if (FAILED.has(job.conclusion)) {
    await alertFailure(release, job);
  } else if (job.conclusion === "success") {
    await alertSuccess(release);
  } else {
    core.info(`${release}: the job concluded ${job.conclusion}; nothing to do`);
  }
}

const jobs = await github.paginate(github.rest.actions.listJobsForWorkflowRun,
  { owner, repo, run_id: context.runId, per_page: 100 });
const broken = [];
for (const release of releases) {
  try {
    await alertRelease(release, jobs);
  } catch (err) {
    core.error(`${release}: the alert failed: ${err.message}`);
    broken.push(release);
  }
}
if (broken.length > 0) {
  core.setFailed(`the alert failed for release line(s) ${broken.join(", ")}; see the errors above`);
}
