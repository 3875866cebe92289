"""The real Kubernetes control plane of scripts/cluster.sh, as the deploy-path tests use it.

`Cluster` reads objects back from the API server with the kubectl built at the server's release,
and runs a render's deploy/scripts against it with that kubectl first on PATH. kwok plays the
kubelets: pods become Running and Ready, a Job's pods succeed, but nothing serves traffic, so the
scripts' one seam, SMOKE_URL, points every smoke gate at the rendered service running natively.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Callable

from helpers import ROOT, VENV_BIN

# Timings for a cluster whose pods are ready within a second (the defaults suit a real cluster).
FAST = {"ROLLOUT_TIMEOUT": "90s", "POLL_SECONDS": "0.2", "CANARY_INTERVAL_SECONDS": "0", "SMOKE_ATTEMPTS": "1",
        "SMOKE_DELAY_SECONDS": "0", "ROUTE_TIMEOUT": "20", "MIGRATION_TIMEOUT": "90",
        # No Gateway controller runs here (see GatewayAcceptor); the tests that need the wait turn it on.
        "REQUIRE_ROUTE_ACCEPTED": "false"}


def cluster_up() -> tuple[Path, Path]:
    """scripts/cluster.sh up (idempotent, locked: every xdist worker may call it) -> (kubeconfig, bin)."""
    up = subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), "up"], text=True, capture_output=True,
                        timeout=5400, check=False)
    lines = up.stdout.splitlines()
    assert up.returncode == 0 and len(lines) == 1 and lines[0].startswith("KUBECONFIG="), (
        f"scripts/cluster.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    binaries = subprocess.run(["bash", str(ROOT / "scripts" / "cluster.sh"), "bin"], text=True,
                              capture_output=True, timeout=60, check=True).stdout.strip()
    return Path(lines[0].split("=", 1)[1]), Path(binaries)


class Cluster:
    def __init__(self, kubeconfig: Path, bin_dir: Path):
        self.kubeconfig = kubeconfig
        self.bin = bin_dir

    # kubectl --------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """The environment of kubectl and the scripts: this cluster, its kubectl first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SMOKE_", "DEPLOY_"))}
        env.update(FAST)
        env["PATH"] = os.pathsep.join([str(self.bin), str(VENV_BIN), env.get("PATH", "")])
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(extra)
        return env

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.bin / "kubectl"), *args], env=self.env(), text=True, input=stdin,
                              capture_output=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        proc = self.kubectl("get", kind, name, "--namespace", namespace, "--ignore-not-found", "-o", "json")
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def names(self, kind: str, namespace: str, selector: str | None = None) -> set[str]:
        args = ["get", kind, "--namespace", namespace, "-o", "name"]
        if selector:
            args += ["--selector", selector]
        return {line.split("/", 1)[1] for line in self.kubectl(*args).stdout.split()}

    # what the tests read back ------------------------------------------------------------------------
    def image(self, deployment: str, namespace: str) -> str:
        return self.get("deployment", deployment, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]

    def replicas(self, deployment: str, namespace: str) -> int:
        return self.get("deployment", deployment, namespace)["spec"]["replicas"]

    def ready_pods(self, deployment: str, namespace: str) -> int:
        return self.get("deployment", deployment, namespace)["status"].get("readyReplicas", 0)

    def selector_colour(self, service: str, namespace: str) -> str:
        return self.get("service", service, namespace)["spec"]["selector"]["colour"]

    def weights(self, route: str, namespace: str) -> list[int]:
        refs = self.get("httproute", route, namespace)["spec"]["rules"][0]["backendRefs"]
        return [ref["weight"] for ref in refs]

    def revision(self, deployment: str, namespace: str) -> int:
        annotations = self.get("deployment", deployment, namespace)["metadata"]["annotations"]
        return int(annotations["deployment.kubernetes.io/revision"])

    # namespaces -------------------------------------------------------------------------------------
    def namespace_name(self, prefix: str) -> str:
        """A namespace of this test's own (tests share one cluster, and run in parallel)."""
        return f"{prefix[:40]}-{uuid.uuid4().hex[:8]}"

    def create_namespace(self, name: str, secret: tuple[str, list[str]] | None = None,
                         pod_security: tuple[str, ...] = ("enforce",)) -> None:
        """The platform's part: a namespace with the restricted Pod Security level in each of the
        POD_SECURITY modes, and the Secret the pods reference (dummy values)."""
        labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in pod_security}
        self.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}))
        if secret:
            secret_name, keys = secret
            self.kubectl("create", "secret", "generic", secret_name, "--namespace", name,
                         *[f"--from-literal={key}=not-a-real-value-{key.lower()}" for key in keys])

    def token_kubeconfig(self, path: Path, serviceaccount: str, namespace: str) -> Path:
        """A kubeconfig at PATH that acts as the ServiceAccount (a bound token from the TokenRequest
        API, nothing else): what a CI credential scoped by RBAC may do, checked by the API server."""
        token = self.kubectl("create", "token", serviceaccount, "--namespace", namespace,
                             "--duration", "1h").stdout.strip()
        minify = json.loads(self.kubectl("config", "view", "--minify", "--raw", "-o", "json").stdout)
        cluster = minify["clusters"][0]["cluster"]
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "ci",
            "clusters": [{"name": "c", "cluster": {k: cluster[k] for k in cluster
                                                   if k in ("server", "certificate-authority",
                                                            "certificate-authority-data")}}],
            "users": [{"name": serviceaccount, "user": {"token": token}}],
            "contexts": [{"name": "ci", "context": {"cluster": "c", "user": serviceaccount}}]}))
        path.chmod(0o600)
        return path

    def delete_namespace(self, name: str) -> None:
        self.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)

    # the rendered repository's scripts ---------------------------------------------------------------
    def script(self, project, script: str, *args: str, expect: int | None = 0, timeout: float = 300,
               **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(project.path / "deploy" / "scripts" / script), *args], cwd=project.path,
                              env=self.env(**env), text=True, capture_output=True, timeout=timeout, check=False)
        if expect is not None:
            assert (proc.returncode == 0) == (expect == 0), (
                f"{script} {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                f"\n--- stderr\n{proc.stderr}")
        return proc


class GatewayAcceptor:
    """Writes `Accepted` into the status of the HTTPRoutes of a namespace, as a Gateway controller does.

    A stand-in, named as such: no Gateway implementation can run here (each needs its own data
    plane), and kwok simulates pods, not gateways. The API server itself still validates every
    route against the Gateway API CRDs and their CEL rules; only the controller's status is played.
    """

    def __init__(self, cluster: Cluster, namespace: str, accept: bool = True):
        self.cluster, self.namespace, self.accept = cluster, namespace, accept
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "GatewayAcceptor":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stop.is_set():
            for name in self.cluster.names("httproute", self.namespace) if self._namespace_exists() else ():
                route = self.cluster.get("httproute", name, self.namespace)
                if route:
                    self._write_status(route)
            time.sleep(0.2)

    def _namespace_exists(self) -> bool:
        return bool(self.cluster.kubectl("get", "namespace", self.namespace, "--ignore-not-found", "-o", "name",
                                         check=False).stdout.strip())

    def _write_status(self, route: dict[str, Any]) -> None:
        status = "True" if self.accept else "False"
        parents = [{
            "parentRef": ref, "controllerName": "example.com/test-gateway-controller",
            "conditions": [{"type": "Accepted", "status": status, "reason": "Accepted" if self.accept else "NotAllowedByListeners",
                            "message": "played by the tests", "observedGeneration": route["metadata"]["generation"],
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        } for ref in route["spec"].get("parentRefs", [])]
        self.cluster.kubectl("patch", "httproute", route["metadata"]["name"], "--namespace", self.namespace,
                             "--subresource=status", "--type=merge", "--patch",
                             json.dumps({"status": {"parents": parents}}), check=False)


class Watch:
    """`kubectl get --watch -o json`: EXTRACT of each version of an object the server stored, in
    order (every change is an event, so a value that lasted only an instant is seen too). NAME is
    one object; with SELECTOR instead, every object it matches."""

    def __init__(self, cluster: Cluster, kind: str, name: str | None, namespace: str,
                 extract: Callable[[dict[str, Any]], Any], selector: str | None = None):
        target = [kind, name] if name else [kind, "--selector", selector]
        self.proc = subprocess.Popen(
            [str(cluster.bin / "kubectl"), "get", *target, "--namespace", namespace, "--watch", "--output", "json"],
            env=cluster.env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        weakref.finalize(self, self.proc.kill)  # a test that fails before stop() leaves no watcher
        self.extract = extract
        self.values_seen: list[Any] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        # the watch has started once the current state is printed: changes from now on are seen
        deadline = time.monotonic() + 30
        while not self.values_seen:
            assert self.proc.poll() is None, f"kubectl get --watch exited: {self.proc.stderr.read()}"
            assert time.monotonic() < deadline, "kubectl get --watch printed nothing in 30 s"
            time.sleep(0.05)

    def _read(self) -> None:
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.proc.stdout:  # one JSON document after another, pretty-printed
            buffer += line
            while buffer.strip():
                try:
                    obj, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                self.values_seen.append(self.extract(obj))

    def stop(self, settle: float = 1.0) -> list[Any]:
        """Stop watching (after SETTLE seconds for the last events) -> every value, in order."""
        time.sleep(settle)
        assert self.proc.poll() is None, f"kubectl get --watch ended early: {self.proc.stderr.read()}"
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        return self.values_seen

    def values(self, settle: float = 1.0) -> list[Any]:
        """stop() -> the values, repeats folded."""
        folded: list[Any] = []
        for value in self.stop(settle):
            if not folded or folded[-1] != value:
                folded.append(value)
        return folded
