"""The cluster DNS add-on's manifests: RBAC, the ``tkedistro-dns`` Deployment and the
``kube-dns`` Service (the image is built by ``image.py``).
"""

from __future__ import annotations

import io

from ruamel.yaml import YAML

NAMESPACE = "kube-system"
NAME = "tkedistro-dns"
HEALTH_PORT = 8080
LABELS = {"k8s-app": "kube-dns"}


def dns_manifests(image: str, cluster_ip: str = "10.96.0.10", domain: str = "cluster.local",
                  reverse_cidrs: tuple[str, ...] = ("10.96.0.0/12", "10.244.0.0/16")) -> str:
    """Multi-document YAML: ServiceAccount, ClusterRole (get/list/watch Services and
    Endpoints), ClusterRoleBinding, the Deployment and the ``kube-dns`` Service at
    ``cluster_ip``. ``reverse_cidrs``: the Service and pod CIDRs whose PTR names it answers."""
    docs = [_service_account(), _cluster_role(), _binding(),
            _deployment(image, domain, reverse_cidrs), _service(cluster_ip)]
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump_all(docs, out)
    return out.getvalue()


def _meta(name: str, namespaced: bool = True) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "labels": dict(LABELS)}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def _service_account() -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)}


def _cluster_role() -> dict[str, object]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": _meta(f"system:{NAME}", namespaced=False),
            "rules": [{"apiGroups": [""], "resources": ["services", "endpoints"],
                       "verbs": ["get", "list", "watch"]}]}


def _binding() -> dict[str, object]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": _meta(f"system:{NAME}", namespaced=False),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": f"system:{NAME}"},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]}


def _probe(path: str, **timing: int) -> dict[str, object]:
    return {"httpGet": {"path": path, "port": HEALTH_PORT, "scheme": "HTTP"}, **timing}


def _container(image: str, domain: str, reverse_cidrs: tuple[str, ...]) -> dict[str, object]:
    return {
        "name": "dns", "image": image, "imagePullPolicy": "IfNotPresent",
        "args": [f"--domain={domain}", "--port=53", f"--health-port={HEALTH_PORT}",
                 f"--reverse-cidrs={','.join(reverse_cidrs)}"],
        "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                  {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        # CoreDNS's 170Mi was OOM-killed in a full conformance run (VmRSS 260 MB while the
        # probes' search-path misses waited on an unreachable upstream); idle it uses 27 MB
        "resources": {"requests": {"cpu": "50m", "memory": "40Mi"},
                      "limits": {"memory": "512Mi"}},
        "livenessProbe": _probe("/healthz", initialDelaySeconds=10, periodSeconds=10,
                                failureThreshold=5),
        "readinessProbe": _probe("/ready", periodSeconds=2),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["all"]}},
    }


def _deployment(image: str, domain: str, reverse_cidrs: tuple[str, ...]) -> dict[str, object]:
    tolerations = [{"key": "CriticalAddonsOnly", "operator": "Exists"}] + [
        {"key": key, "operator": "Exists", "effect": "NoSchedule"}
        for key in ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME),
        "spec": {
            "replicas": 1, "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME, "priorityClassName": "system-cluster-critical",
                    "dnsPolicy": "Default", "tolerations": tolerations,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [_container(image, domain, reverse_cidrs)],
                },
            },
        },
    }


def _service(cluster_ip: str) -> dict[str, object]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {**_meta("kube-dns"),
                     "labels": {**LABELS, "kubernetes.io/name": "KubeDNS"}},
        "spec": {"selector": dict(LABELS), "clusterIP": cluster_ip,
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
    }
