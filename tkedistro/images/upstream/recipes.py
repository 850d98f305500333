"""How each upstream image the v1.20 cluster runs or the conformance specs pull is made
offline: one ``Recipe`` per image (pause and etcd for the cluster, the others for the suite).

Images from the tree follow ``test/images/<name>/Dockerfile`` (binaries built in the builder
image from the vendored tree; the Alpine/Debian tools they add come from the Debian base).
Docker-library images (httpd, nginx, redis, perl) are made from Debian's packages with the
paths, ports and commands the specs rely on; busybox is Debian's busybox-static FROM scratch.
Dockerfiles are jinja2 text (``[[ base ]]``: the Debian base, ``[[ parent ]]``: the image a
recipe starts from).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from tkedistro.core.render import environment
from tkedistro.model.refs import parse_image_ref

AGNHOST_REF = "k8s.gcr.io/e2e-test-images/agnhost:2.21"
# Registries the suite uses for images that must NOT pull (private-registry and bad-name specs).
@dataclass(frozen=True)
class Binary:
    """A binary built from the tree in the builder container; ``argv`` writes ``/out/NAME``."""

    name: str
    argv: tuple[str, ...]

    def partial_argv(self) -> list[str]:
        """``argv`` writing ``/out/NAME.partial`` (renamed once the build succeeded)."""
        out = str(PurePosixPath("/out") / self.name)
        return [a.replace(out, out + ".partial") if a == out else a for a in self.argv]


def go_binary(name: str, package: str) -> Binary:
    return Binary(name, ("go", "build", "-o", f"/out/{name}", package))


PAUSE = Binary("pause", ("gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.2-tkedistro",
                         "-o", "/out/pause", "build/pause/linux/pause.c"))


@dataclass(frozen=True)
class Recipe:
    name: str  # the image's short name, e.g. "agnhost"
    tags: tuple[str, ...]
    dockerfile: str  # jinja2 text
    origin: str  # tree path of the upstream recipe, or "debian"
    binaries: tuple[Binary, ...] = ()
    tree_files: tuple[str, ...] = ()  # copied into the context by their base name
    texts: tuple[tuple[str, str], ...] = ()  # generated context files: (name, content)
    packages: tuple[str, ...] = ()  # Debian packages of the base the image relies on
    parent: str = "base"  # "base", "scratch" or the ref of another recipe's image

    @property
    def from_tree(self) -> bool:
        return self.origin != "debian"

    def render(self, base: str, parent: str | None = None) -> str:
        """The Dockerfile; ``parent``: the local name of the parent image (default its ref)."""
        template = environment().from_string(self.dockerfile)
        return template.render(base=base, parent=parent or self.parent)


def _tree(name: str, tags: tuple[str, ...], dockerfile: str, *,
          binaries: tuple[Binary, ...] = (), tree_files: tuple[str, ...] = (),
          packages: tuple[str, ...] = (), parent: str = "base") -> Recipe:
    return Recipe(name, tags, dockerfile, origin=f"test/images/{name}", binaries=binaries,
                  tree_files=tree_files, packages=packages, parent=parent)


def _debian(name: str, tags: tuple[str, ...], dockerfile: str, *,
            texts: tuple[tuple[str, str], ...] = (), packages: tuple[str, ...] = ()) -> Recipe:
    return Recipe(name, tags, dockerfile, origin="debian", texts=texts, packages=packages)


AGNHOST = _tree("agnhost", ("2.21",), """\
FROM [[ base ]]
RUN ln -s /usr/bin/iperf /usr/local/bin/iperf && mkdir /uploads
EXPOSE 80 8080 8081 9376
COPY localhost.crt localhost.key agnhost /
RUN ln -s agnhost /agnhost-2
ENTRYPOINT ["/agnhost"]
CMD ["pause"]
""", binaries=(go_binary("agnhost", "./test/images/agnhost"),),
    tree_files=("test/images/agnhost/porter/localhost.crt",
                "test/images/agnhost/porter/localhost.key"),
    packages=("dnsutils", "curl", "netcat-openbsd", "iproute2", "iperf", "bash"))


def _webserver(name: str) -> Recipe:
    return _tree(name, ("1.0",), f"""\
FROM [[ parent ]]
COPY {name}.jpg data.json /
CMD ["test-webserver"]
""", tree_files=(f"test/images/{name}/html/{name}.jpg", f"test/images/{name}/html/data.json"),
        parent=AGNHOST_REF)


HTTPD_FOREGROUND = """\
#!/bin/sh
set -e
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
rm -f "$APACHE_PID_FILE"
exec apache2 -DFOREGROUND "$@"
"""
HTTPD_SITE = """\
<VirtualHost *:80>
    DocumentRoot /usr/local/apache2/htdocs
    <Directory /usr/local/apache2/htdocs>
        Require all granted
    </Directory>
</VirtualHost>
"""
NGINX_SITE = """\
server {
    listen 80 default_server;
    root /usr/share/nginx/html;
    index index.html;
    location / { try_files $uri $uri/ =404; }
}
"""
NGINX_INDEX = "<html><body><h1>Welcome to nginx!</h1></body></html>\n"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"

HTTPD = _debian("httpd", ("2.4.38-alpine", "2.4.39-alpine"), """\
FROM [[ base ]]
COPY httpd-foreground /usr/local/bin/
COPY 000-default.conf /etc/apache2/sites-available/
COPY index.html /usr/local/apache2/htdocs/
RUN chmod 0755 /usr/local/bin/httpd-foreground \\
 && ln -sf /proc/self/fd/1 /var/log/apache2/access.log \\
 && ln -sf /proc/self/fd/2 /var/log/apache2/error.log
WORKDIR /usr/local/apache2
EXPOSE 80
STOPSIGNAL SIGWINCH
CMD ["httpd-foreground"]
""", texts=(("httpd-foreground", HTTPD_FOREGROUND), ("000-default.conf", HTTPD_SITE),
           ("index.html", "<html><body><h1>It works!</h1></body></html>\n")),
    packages=("apache2",))

NGINX = _debian("nginx", ("1.14-alpine", "1.15-alpine"), """\
FROM [[ base ]]
COPY default /etc/nginx/sites-available/default
COPY index.html /usr/share/nginx/html/
RUN ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGTERM
CMD ["nginx", "-g", "daemon off;"]
""", texts=(("default", NGINX_SITE), ("index.html", NGINX_INDEX)), packages=("nginx-light",))

BUSYBOX = _debian("busybox", ("1.29",), """\
FROM [[ base ]] AS debian
FROM scratch
COPY --from=debian /bin/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /tmp /etc /root /home /var /usr && chmod 1777 /tmp
COPY passwd group /etc/
CMD ["sh"]
""", texts=(("passwd", PASSWD), ("group", GROUP)), packages=("busybox-static",))

RECIPES: tuple[Recipe, ...] = (
    AGNHOST, _webserver("kitten"), _webserver("nautilus"),
    _tree("nonroot", ("1.0",), "FROM [[ base ]]\nUSER 1234\n"),
    _tree("nonewprivs", ("1.0",), """\
FROM [[ base ]]
COPY nnp /usr/local/bin/nnp
RUN chmod +s /usr/local/bin/nnp
CMD ["nnp"]
""", binaries=(go_binary("nnp", "./test/images/nonewprivs"),)),
    _tree("resource-consumer", ("1.5",), """\
FROM [[ base ]]
COPY consumer consume-cpu /
EXPOSE 8080
ENTRYPOINT ["/consumer"]
""", binaries=(go_binary("consumer", "./test/images/resource-consumer"),
               go_binary("consume-cpu", "./test/images/resource-consumer/consume-cpu")),
        packages=("stress",)),
    Recipe("regression-issue-74839-amd64", ("1.0",), """\
FROM [[ base ]]
COPY regression-issue-74839 /
ENTRYPOINT ["/regression-issue-74839"]
""", origin="test/images/regression-issue-74839",
        binaries=(go_binary("regression-issue-74839", "./test/images/regression-issue-74839"),)),
    _tree("ipc-utils", ("1.0",), "FROM [[ base ]]\n", packages=("util-linux",)),
    _tree("jessie-dnsutils", ("1.0",), "FROM [[ base ]]\n", packages=("dnsutils",)),
    Recipe("sample-apiserver", ("1.17",), """\
FROM [[ base ]]
COPY kube-sample-apiserver /
ENTRYPOINT ["/kube-sample-apiserver"]
""", origin="staging/src/k8s.io/sample-apiserver",
        binaries=(go_binary("kube-sample-apiserver", "k8s.io/sample-apiserver"),)),
    Recipe("pause", ("3.2",), """\
FROM scratch
COPY pause /pause
ENTRYPOINT ["/pause"]
""", origin="build/pause", binaries=(PAUSE,), parent="scratch"),
    _debian("etcd", ("3.4.13-0",), """\
FROM [[ base ]]
RUN ln -s /usr/bin/etcd /usr/local/bin/etcd && ln -s /usr/bin/etcdctl /usr/local/bin/etcdctl
EXPOSE 2379 2380
""", packages=("etcd-server", "etcd-client")),
    HTTPD, NGINX, BUSYBOX,
    _debian("redis", ("5.0.5-alpine",), """\
FROM [[ base ]]
RUN mkdir /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
""", packages=("redis-server",)),
    _debian("perl", ("5.26",), 'FROM [[ base ]]\nCMD ["perl", "-de0"]\n', packages=("perl",)),
)


def short_name(image: str) -> str:
    """``k8s.gcr.io/e2e-test-images/agnhost:2.21`` -> ``agnhost``."""
    return parse_image_ref(image).short_name


def tag_of(image: str) -> str:
    return parse_image_ref(image).tag or "latest"


def recipe_for(ref: str) -> Recipe | None:
    """The recipe that makes ``ref`` (matched by short name and tag), or None."""
    if parse_image_ref(ref).digest:  # a digest names one image; a recipe makes a new one
        return None
    name, tag = short_name(ref), tag_of(ref)
    for recipe in RECIPES:
        if recipe.name == name and tag in recipe.tags:
            return recipe
    return None
