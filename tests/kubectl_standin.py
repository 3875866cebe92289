"""A recording stand-in for kubectl: the deploy scripts' tests put it on PATH as `kubectl`.

No cluster runs on the development machines, so the tests drive deploy/scripts/*.sh against this
stand-in. It keeps a tiny cluster in a JSON state file (KUBECTL_STANDIN_STATE), answers the
commands the scripts use the way kubectl does (get with jsonpath, apply, patch, scale, rollout,
delete, port-forward, logs, config), and appends every invocation to a JSON-lines log
(KUBECTL_STANDIN_LOG) with the objects it changed. `kubectl kustomize` runs the real kubectl
(KUBECTL_STANDIN_REAL).

Scripted behaviour, from the state's "script" entry:
  broken_images    images whose pods fail their smoke test (port-forward answers 503)
  rollout_fails    Deployments whose `rollout status` times out
  job_fails        true: the migration Job fails
  restarts         {deployment name: restart count of its pods}
  route_accepted   false: the Gateway never accepts the HTTPRoute
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

# socket, subprocess and yaml are imported by the commands that need them: every
# kubectl call of a script starts this program, so its start-up time adds up.

KINDS = {
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "service": "Service", "services": "Service", "svc": "Service",
    "httproute": "HTTPRoute", "httproutes": "HTTPRoute",
    "job": "Job", "jobs": "Job",
    "secret": "Secret", "secrets": "Secret",
    "namespace": "Namespace", "namespaces": "Namespace", "ns": "Namespace",
    "configmap": "ConfigMap", "configmaps": "ConfigMap",
    "pod": "Pod", "pods": "Pod",
}
CLUSTER_SCOPED = {"Namespace"}
STATE_PATH = Path(os.environ["KUBECTL_STANDIN_STATE"])
LOG_PATH = Path(os.environ["KUBECTL_STANDIN_LOG"])


class Fail(Exception):
    """Exit with kubectl's message and status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------------
# State and log
# ------------------------------------------------------------------------------------------------
def load_state() -> dict[str, Any]:
    state = json.loads(STATE_PATH.read_text()) if STATE_PATH.exists() else {}
    state.setdefault("context", "standin")
    state.setdefault("reachable", True)
    state.setdefault("objects", {})
    state.setdefault("history", {})
    state.setdefault("script", {})
    return state


def save_state(state: dict[str, Any]) -> None:
    tmp = STATE_PATH.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(STATE_PATH)


def log(entry: dict[str, Any]) -> None:
    with LOG_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(entry) + "\n")


def key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{'' if kind in CLUSTER_SCOPED else namespace}/{name}"


# ------------------------------------------------------------------------------------------------
# jsonpath (the subset kubectl users write): {.a.b[0].c}, [*], escaped dots, [?(@.k=="v")]
# ------------------------------------------------------------------------------------------------
TOKEN = re.compile(r"\.((?:\\\.|[A-Za-z0-9_/-])+)|\[(\d+|\*)\]|\[\?\(@\.(\w+)==\"([^\"]*)\"\)\]")


def jsonpath(template: str, document: Any) -> str:
    """A template of {expression} and {"literal"} blocks, as `-o jsonpath=...` takes."""
    blocks = re.findall(r'\{(?:"([^"]*)"|([^{}]*))\}', template)
    if "".join("{%s}" % (f'"{lit}"' if lit or not expr else expr) for lit, expr in blocks) != template:
        raise Fail(f"error: unsupported jsonpath template {template!r} (stand-in)")
    return "".join(literal if not expression else evaluate(expression, document)
                   for literal, expression in blocks)


def evaluate(path: str, document: Any) -> str:
    nodes, position = [document], 0
    while position < len(path):
        token = TOKEN.match(path, position)
        if not token:
            raise Fail(f"error: unsupported jsonpath {path!r} at {path[position:]!r} (stand-in)")
        position = token.end()
        field, index, filter_key, filter_value = token.groups()
        found = []
        for node in nodes:
            if field is not None:
                name = field.replace("\\.", ".")
                if isinstance(node, dict) and name in node:
                    found.append(node[name])
                elif isinstance(node, list) and name:
                    found.extend(item[name] for item in node if isinstance(item, dict) and name in item)
            elif index is not None and isinstance(node, list):
                found.extend(node if index == "*" else node[int(index):int(index) + 1])
            elif filter_key is not None and isinstance(node, list):
                found.extend(item for item in node if isinstance(item, dict)
                             and str(item.get(filter_key)) == filter_value)
        nodes = found
    return " ".join(json.dumps(node) if isinstance(node, (dict, list)) else str(node) for node in nodes)


# ------------------------------------------------------------------------------------------------
# Patches
# ------------------------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def strategic_patch(target: Any, patch: Any) -> Any:
    """Merge patch, except lists of named objects (containers...) merge by name."""
    if isinstance(patch, list) and isinstance(target, list) and all(
            isinstance(item, dict) and "name" in item for item in patch + target):
        merged = [copy.deepcopy(item) for item in target]
        for item in patch:
            for index, existing in enumerate(merged):
                if existing["name"] == item["name"]:
                    merged[index] = strategic_patch(existing, item)
                    break
            else:
                merged.append(copy.deepcopy(item))
        return merged
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        result[name] = strategic_patch(result.get(name), value)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    result = copy.deepcopy(target)
    for operation in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        parent = result
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = int(parts[-1]) if isinstance(parent, list) else parts[-1]
        if operation["op"] == "test":
            if parent[last] != operation["value"]:
                raise Fail(f"The request is invalid: the server rejected our request due to an error in "
                           f"our request: testing value /{'/'.join(parts)} failed")
        elif operation["op"] in {"replace", "add"}:
            parent[last] = operation["value"]
        elif operation["op"] == "remove":
            del parent[last]
    return result


# ------------------------------------------------------------------------------------------------
# Objects
# ------------------------------------------------------------------------------------------------
def labels_match(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            name, value = term.split("!=", 1)
            if labels.get(name) == value:
                return False
        else:
            name, value = term.replace("==", "=").split("=", 1)
            if labels.get(name) != value:
                return False
    return True


def deployment_pods(state: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    pods = []
    for object_key, obj in state["objects"].items():
        kind, ns, name = object_key.split("/", 2)
        if kind != "Deployment" or ns != namespace:
            continue
        spec = obj["spec"]
        for index in range(int(spec.get("replicas", 1))):
            pods.append({
                "metadata": {"name": f"{name}-{index}", "labels": spec["template"]["metadata"]["labels"]},
                "spec": spec["template"]["spec"],
                "status": {"containerStatuses": [
                    {"name": "app", "ready": True, "restartCount": state["script"].get("restarts", {}).get(name, 0)}
                ]},
            })
    return pods


def with_status(state: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    if obj["kind"] == "HTTPRoute":
        accepted = "True" if state["script"].get("route_accepted", True) else "False"
        obj["status"] = {"parents": [{"parentRef": ref, "conditions": [{"type": "Accepted", "status": accepted}]}
                                     for ref in obj["spec"].get("parentRefs", [])]}
    elif obj["kind"] == "Job":
        failed = state["script"].get("job_fails", False)
        obj["status"] = {"conditions": [{"type": "Failed" if failed else "Complete", "status": "True"}]}
    return obj


def record_template(state: dict[str, Any], object_key: str, obj: dict[str, Any]) -> None:
    if obj["kind"] == "Deployment":
        history = state["history"].setdefault(object_key, [])
        if not history or history[-1] != obj["spec"]["template"]:
            history.append(copy.deepcopy(obj["spec"]["template"]))


def store(state: dict[str, Any], object_key: str, obj: dict[str, Any], changes: list[str]) -> str:
    before = state["objects"].get(object_key)
    if before == obj:
        return "unchanged"
    state["objects"][object_key] = obj
    record_template(state, object_key, obj)
    changes.append(object_key)
    return "created" if before is None else "configured"


# ------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------
def option(args: list[str], *names: str, default: str | None = None) -> str | None:
    """The value of --name VALUE or --name=VALUE (removed from args)."""
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                value = args[index + 1]
                del args[index:index + 2]
                return value
            if arg.startswith(name + "="):
                del args[index]
                return arg.split("=", 1)[1]
    return default


def flag(args: list[str], name: str) -> bool:
    for index, arg in enumerate(args):
        if arg == name or arg.startswith(name + "="):
            del args[index]
            return True
    return False


def resource(args: list[str]) -> tuple[str, str | None]:
    """'deployment/x' or 'deployment x' -> ('Deployment', 'x')."""
    first = args.pop(0)
    if "/" in first:
        kind, name = first.split("/", 1)
        return KINDS[kind.lower()], name
    return KINDS[first.lower()], (args.pop(0) if args and not args[0].startswith("-") else None)


def cmd_get(state, namespace, args, changes):
    if flag(args, "--raw"):
        if not state["reachable"]:
            raise Fail("Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout")
        return json.dumps({"gitVersion": "v1.33.0-standin"})
    output = option(args, "-o", "--output", default="")
    selector = option(args, "--selector", "-l")
    ignore = flag(args, "--ignore-not-found")
    kind, name = resource(args)
    if kind == "Pod":
        document = {"items": [pod for pod in deployment_pods(state, namespace)
                              if labels_match(pod["metadata"]["labels"], selector)]}
    else:
        obj = state["objects"].get(key(kind, namespace, name))
        if obj is None:
            if ignore:
                return ""
            raise Fail(f'Error from server (NotFound): {kind.lower()}s "{name}" not found')
        document = with_status(state, obj)
        if output == "name":
            return f"{kind.lower()}/{name}"
    if output.startswith("jsonpath="):
        return jsonpath(output.split("=", 1)[1], document)
    return json.dumps(document)


def cmd_apply(state, namespace, args, changes):
    # Started with `python -S` (faster): the test environment's site-packages hold PyYAML.
    sys.path.extend(os.environ.get("KUBECTL_STANDIN_PYTHONPATH", "").split(os.pathsep))
    import yaml

    selector = option(args, "--selector", "-l")
    path = option(args, "--filename", "-f")
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    lines = []
    for doc in (d for d in yaml.safe_load_all(text) if d):
        labels = doc.get("metadata", {}).get("labels", {})
        if not labels_match(labels, selector):
            continue
        kind, name = doc["kind"], doc["metadata"]["name"]
        ns = doc["metadata"].get("namespace", namespace)
        if kind not in CLUSTER_SCOPED and ns != namespace:
            raise Fail(f'error: the namespace from the provided object "{ns}" does not match the namespace '
                       f'"{namespace}". You must pass \'--namespace={ns}\' to perform this operation.')
        if kind not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = ns
            if key("Namespace", "", ns) not in state["objects"] and not state["script"].get("namespaces_exist", True):
                raise Fail(f'Error from server (NotFound): namespaces "{ns}" not found')
        object_key = key(kind, ns, name)
        existing = state["objects"].get(object_key)
        if kind == "Job" and existing is not None and existing["spec"]["template"] != doc["spec"]["template"]:
            raise Fail(f'The Job "{name}" is invalid: spec.template: Invalid value: field is immutable')
        lines.append(f"{kind.lower()}/{name} {store(state, object_key, doc, changes)}")
    if not lines:
        raise Fail("error: no objects passed to apply")
    return "\n".join(lines)


def cmd_patch(state, namespace, args, changes):
    patch_type = option(args, "--type", default="strategic")
    patch = json.loads(option(args, "--patch", "-p"))
    kind, name = resource(args)
    object_key = key(kind, namespace, name)
    obj = state["objects"].get(object_key)
    if obj is None:
        raise Fail(f'Error from server (NotFound): {kind.lower()}s "{name}" not found')
    patched = {"merge": merge_patch, "json": json_patch, "strategic": strategic_patch}[patch_type](obj, patch)
    outcome = store(state, object_key, patched, changes)
    return f"{kind.lower()}/{name} {'patched' if outcome != 'unchanged' else 'patched (no change)'}"


def cmd_scale(state, namespace, args, changes):
    replicas = int(option(args, "--replicas"))
    kind, name = resource(args)
    object_key = key(kind, namespace, name)
    if object_key not in state["objects"]:
        raise Fail(f'Error from server (NotFound): {kind.lower()}s "{name}" not found')
    obj = copy.deepcopy(state["objects"][object_key])
    obj["spec"]["replicas"] = replicas
    store(state, object_key, obj, changes)
    return f"{kind.lower()}.apps/{name} scaled"


def cmd_rollout(state, namespace, args, changes):
    action = args.pop(0)
    revision = option(args, "--to-revision")
    option(args, "--timeout")
    kind, name = resource(args)
    object_key = key(kind, namespace, name)
    if object_key not in state["objects"]:
        raise Fail(f'Error from server (NotFound): deployments.apps "{name}" not found')
    if action == "status":
        if name in state["script"].get("rollout_fails", []):
            raise Fail(f'error: deployment "{name}" exceeded its progress deadline')
        return f'deployment "{name}" successfully rolled out'
    if action == "undo":
        history = state["history"].get(object_key, [])
        target_index = int(revision) - 1 if revision else len(history) - 2
        if not 0 <= target_index < len(history):
            raise Fail(f"error: unable to find specified revision {revision or 'previous'} in history")
        obj = copy.deepcopy(state["objects"][object_key])
        obj["spec"]["template"] = copy.deepcopy(history[target_index])
        store(state, object_key, obj, changes)
        return f"deployment.apps/{name} rolled back"
    raise Fail(f"error: rollout {action} is not supported by the stand-in")


def cmd_delete(state, namespace, args, changes):
    ignore = flag(args, "--ignore-not-found")
    flag(args, "--wait")
    kind, name = resource(args)
    object_key = key(kind, namespace, name)
    if object_key not in state["objects"]:
        if ignore:
            return ""
        raise Fail(f'Error from server (NotFound): {kind.lower()}s "{name}" not found')
    del state["objects"][object_key]
    changes.append(object_key)
    if kind == "Namespace":
        for other in [k for k in state["objects"] if k.split("/")[1] == name]:
            del state["objects"][other]
            changes.append(other)
    return f'{kind.lower()} "{name}" deleted'


def cmd_logs(state, namespace, args, changes):
    return "migrations: stand-in log line"


def cmd_config(state, namespace, args, changes):
    action = args.pop(0)
    if action == "current-context":
        if not state["context"]:
            raise Fail("error: current-context is not set")
        return state["context"]
    if action == "get-contexts":
        if args and args[0] != state["context"]:
            raise Fail(f'error: context {args[0]} not found')
        return state["context"] or ""
    raise Fail(f"error: config {action} is not supported by the stand-in")


def cmd_port_forward(state, namespace, args, changes):
    """Serve the service contract's endpoints for the Service's pods, like a port-forward."""
    import socket  # a few lines of HTTP: http.server alone takes longer to import than a test step

    option(args, "--address")
    _, name = resource(args)
    service = state["objects"].get(key("Service", namespace, name))
    if service is None:
        raise Fail(f'Error from server (NotFound): services "{name}" not found')
    selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())
    pods = [pod for pod in deployment_pods(state, namespace) if labels_match(pod["metadata"]["labels"], selector)]
    if not pods:
        raise Fail(f"error: unable to forward port because no pod of service/{name} is running")
    broken = {container["image"] for pod in pods for container in pod["spec"]["containers"]} & set(
        state["script"].get("broken_images", []))
    bodies = {"/health": '{"status":"ok"}', "/ready": '{"status":"ready","checks":{}}',
              "/health/detailed": '{"status":"ok","version":"standin","checks":{}}',
              "/metrics": "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)  # never outlive a forgotten test
    target = args[0].lstrip(":") if args else "80"
    print(f"Forwarding from 127.0.0.1:{listener.getsockname()[1]} -> {target}", flush=True)
    log({"argv": sys.argv[1:], "words": ["port-forward", f"service/{name}"], "namespace": namespace,
         "changes": [], "status": 0})
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            raise SystemExit(0)
        with connection:
            request = connection.recv(65536).decode(errors="replace")
            path = request.split(" ")[1] if request.count(" ") >= 2 else "/"
            status = 404 if path not in bodies else 503 if broken else 200
            body = (bodies.get(path, "") if status == 200 else '{"status":"unavailable"}').encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            connection.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                               f"Connection: close\r\n\r\n".encode() + body)


def cmd_kustomize(state, namespace, args, changes):
    import subprocess

    real = os.environ["KUBECTL_STANDIN_REAL"]
    proc = subprocess.run([real, "kustomize", *args], check=False, text=True, capture_output=True)
    if proc.returncode:
        raise Fail(proc.stderr.strip(), proc.returncode)
    return proc.stdout.rstrip("\n")


COMMANDS = {"get": cmd_get, "apply": cmd_apply, "patch": cmd_patch, "scale": cmd_scale,
            "rollout": cmd_rollout, "delete": cmd_delete, "logs": cmd_logs, "config": cmd_config,
            "port-forward": cmd_port_forward, "kustomize": cmd_kustomize}


def main(argv: list[str]) -> int:
    args = list(argv)
    option(args, "--context")
    option(args, "--request-timeout")
    namespace = option(args, "--namespace", "-n", default="default")
    words = list(args)  # the command without kubectl's global options, for the log
    command = args.pop(0) if args else ""
    state = load_state()
    changes: list[str] = []
    status, output = 0, ""
    try:
        if command not in COMMANDS:
            raise Fail(f"error: unknown command {command!r} for the kubectl stand-in")
        output = COMMANDS[command](state, namespace, args, changes)
    except Fail as failure:
        status = failure.status
        print(failure, file=sys.stderr)
    if changes:
        save_state(state)
    if command not in {"kustomize"}:
        log({"argv": argv, "words": words, "namespace": namespace, "changes": changes, "status": status})
    if output:
        print(output)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
