#!/usr/bin/env python3
"""Production-readiness check: do the ticked items of docs/production-readiness.md still hold?

Run it with `make readiness` (CI runs it on every pull request and on main). Each rule prints
`ok` or `FAIL`; a failure names the file to fix. Exit status 1 when any rule fails, 2 on a usage
error. Needs Python 3.11+, PyYAML, and kubectl (or kustomize) to build the manifests.

Managed by the template: `copier update` brings new rules. A false positive of the secret scan is
silenced on its line with a comment containing `readiness: allow-secret`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PyYAML has no type hints; `make readiness` installs it next to this script, not in the service.
import yaml  # type: ignore[import-untyped, import-not-found, unused-ignore]

HERE = Path(__file__).resolve().parent
CHECKLIST = "docs/production-readiness.md"
ENV_EXAMPLE = ".env.example"
DOCKERFILE = "Dockerfile"
OVERLAYS = "deploy/k8s/overlays"
K8S = "deploy/k8s"
WORKFLOWS = ".github/workflows"

# Kubernetes kinds whose pods serve traffic (probes required) and where their pod spec lives.
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout"}
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = dict.fromkeys(
    LONG_RUNNING | {"Job"}, ("spec", "template", "spec")
)
POD_SPEC_PATHS["CronJob"] = ("spec", "jobTemplate", "spec", "template", "spec")
POD_SPEC_PATHS["Pod"] = ("spec",)
# The contract: startup and liveness probes on /health, readiness on /ready.
PROBE_PATHS = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
KUSTOMIZATIONS = ("kustomization.yaml", "kustomization.yml", "Kustomization")

SKIP_DIRS = {
    ".git",
    "node_modules",
    ".venv",
    "venv",
    "dist",
    "build",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "staticfiles",
    "coverage",
    "htmlcov",
    "bin",
    ".cache",
}
SUPPRESSION_MARK = "readiness: allow-secret"
MIN_ENTROPY_BITS = 3.0  # per character: what a generated token has, a word does not
MIN_PASSWORD_LENGTH = 8
MAX_SCANNED_BYTES = 1_000_000  # bigger files are data or lockfiles, not configuration

Doc = dict[str, Any]


@dataclass
class Failure:
    file: str
    message: str


@dataclass
class Rule:
    name: str
    description: str
    check: Callable[[Repo], list[Failure]]


def dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... or None when a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return 0


def load_yaml_all(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def kustomize_command() -> list[str] | None:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    return [kustomize, "build"] if kustomize else None


# ------------------------------------------------------------------------------------------------
# The repository being checked, with what several rules share (built manifests, sources).
# ------------------------------------------------------------------------------------------------
class Repo:
    def __init__(self, root: Path, facts: dict[str, Any]) -> None:
        self.root = root
        self.facts = facts
        self._built: dict[str, tuple[list[Doc], str]] | None = None
        self._sources: list[tuple[str, Doc]] | None = None

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def text(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8", errors="replace")

    def overlays(self) -> list[Path]:
        base = self.root / OVERLAYS
        if not base.is_dir():
            return []
        return sorted(d for d in base.iterdir() if any((d / k).is_file() for k in KUSTOMIZATIONS))

    def built(self) -> dict[str, tuple[list[Doc], str]]:
        """overlay path -> (objects of `kubectl kustomize`, error message or "")."""
        if self._built is None:
            self._built = {}
            command = kustomize_command()
            for overlay in self.overlays():
                rel = self.rel(overlay)
                if command is None:
                    self._built[rel] = ([], "neither kubectl nor kustomize is on PATH: install one")
                    continue
                # a fixed argument list of kubectl/kustomize found on PATH, no shell
                proc = subprocess.run(  # noqa: S603
                    [*command, str(overlay)], capture_output=True, text=True, check=False
                )
                if proc.returncode != 0:
                    error = f"`{' '.join(command)}` failed: {proc.stderr.strip()}"
                    self._built[rel] = ([], error)
                else:
                    self._built[rel] = (load_yaml_all(proc.stdout), "")
        return self._built

    def k8s_sources(self) -> list[tuple[str, Doc]]:
        """(file, object) for every YAML object under deploy/k8s, to name the file to fix."""
        if self._sources is None:
            self._sources = []
            base = self.root / K8S
            for path in sorted(base.rglob("*.y*ml")) if base.is_dir() else []:
                try:
                    docs = load_yaml_all(path.read_text(encoding="utf-8"))
                except yaml.YAMLError:
                    continue
                self._sources += [(self.rel(path), doc) for doc in docs]
        return self._sources

    def source_of(self, kind: str, name: str, overlay: str) -> str:
        """The file that defines (or patches) an object of the built manifests."""
        candidates = []
        for file, doc in self.k8s_sources():
            source_name = dig(doc, "metadata", "name") or ""
            if doc.get("kind") == kind and source_name and source_name in name:
                in_base = not file.startswith(OVERLAYS + "/")
                if in_base or file.startswith(overlay + "/"):
                    candidates.append((not in_base, -len(source_name), file))
        if not candidates:
            return overlay + "/kustomization.yaml"
        files = [file for _, _, file in sorted(candidates)]
        return files[0] + (f" (or {', '.join(files[1:])})" if files[1:] else "")

    def workflows(self) -> list[tuple[str, Doc | Exception]]:
        base = self.root / WORKFLOWS
        files = sorted(p for p in base.glob("*.y*ml") if p.is_file()) if base.is_dir() else []
        out: list[tuple[str, Doc | Exception]] = []
        for path in files:
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
                out.append((self.rel(path), doc if isinstance(doc, dict) else {}))
            except yaml.YAMLError as error:
                out.append((self.rel(path), error))
        return out

    def files(self) -> list[str]:
        """Files that are (or would be) committed: git's view when this is a repository."""
        git = shutil.which("git")
        if (self.root / ".git").exists() and git:
            command = [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
            proc = subprocess.run(  # noqa: S603 - a fixed git command, no shell
                command, cwd=self.root, capture_output=True, text=True, check=False
            )
            if proc.returncode == 0:
                names = {f for f in proc.stdout.split("\0") if f}
                return sorted(f for f in names if (self.root / f).is_file())
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                if name == ".env" or (name.startswith(".env.") and name != ".env.example"):
                    continue  # local, git-ignored configuration
                out.append(self.rel(Path(dirpath) / name))
        return sorted(out)


# ------------------------------------------------------------------------------------------------
# Dockerfile
# ------------------------------------------------------------------------------------------------
Instruction = tuple[str, str, int]  # (INSTRUCTION, arguments, line)


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuations joined and heredoc bodies skipped."""
    out: list[Instruction] = []
    buffer, start, heredoc = "", 0, ""
    for number, line in enumerate(text.splitlines(), 1):
        if heredoc:
            if line.strip() == heredoc:
                heredoc = ""
            continue
        stripped = line.strip()
        if stripped.startswith("#") or (not buffer and not stripped):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        match = re.match(r"([A-Za-z]+)\s*(.*)", buffer + stripped)
        buffer = ""
        if not match:
            continue
        instruction, arguments = match.group(1).upper(), match.group(2).strip()
        here = re.search(r"<<-?[\"']?([A-Za-z_]\w*)[\"']?", arguments)
        if here and instruction in {"RUN", "COPY", "ADD"}:
            heredoc = here.group(1)
        out.append((instruction, arguments, start))
    return out


def substitute(value: str, variables: dict[str, str]) -> str:
    """${NAME}, ${NAME:-default} and $NAME with the global ARG defaults."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return variables.get(name) or match.group(2) or ""

    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)", replace, value)


def final_stage(repo: Repo, instruction: str) -> list[tuple[str, int]] | None:
    """(arguments, line) of INSTRUCTION in the last stage; None without a Dockerfile or FROM."""
    if not repo.exists(DOCKERFILE):
        return None
    stages: list[list[Instruction]] = []
    for item in dockerfile_instructions(repo.text(DOCKERFILE)):
        if item[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(item)
    if not stages:
        return None
    return [(args, line) for name, args, line in stages[-1] if name == instruction]


def image_uid(repo: Repo) -> int | None:
    users = final_stage(repo, "USER") or []
    user = users[-1][0].split(":")[0] if users else ""
    return int(user) if user.isdigit() else None


def check_user(repo: Repo) -> list[Failure]:
    users = final_stage(repo, "USER")
    if users is None:
        return [Failure(DOCKERFILE, "no Dockerfile (or no FROM in it)")]
    if not users:
        message = "the final stage has no USER: it runs as root; add `USER <uid>:<gid>`"
        return [Failure(DOCKERFILE, message)]
    value, line = users[-1]
    user = value.split(":")[0]
    if not user.isdigit():
        message = f"USER {value} is a name: use a numeric uid so Kubernetes can verify runAsNonRoot"
        return [Failure(f"{DOCKERFILE}:{line}", message)]
    if int(user) == 0:
        return [Failure(f"{DOCKERFILE}:{line}", f"USER {value} is root: use a non-zero uid")]
    return []


def check_healthcheck(repo: Repo) -> list[Failure]:
    checks = final_stage(repo, "HEALTHCHECK")
    if checks is None:
        return [Failure(DOCKERFILE, "no Dockerfile (or no FROM in it)")]
    if not checks:
        message = "the final stage has no HEALTHCHECK: add one that calls /health"
        return [Failure(DOCKERFILE, message)]
    value, line = checks[-1]
    if value.upper().startswith("NONE"):
        return [Failure(f"{DOCKERFILE}:{line}", "HEALTHCHECK NONE disables the health check")]
    return []


def unpinned(image: str) -> bool:
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return False
    last = image.rsplit("/", maxsplit=1)[-1]
    name, _, tag = last.rpartition(":") if ":" in last else (last, "", "")
    # distroless names its release in the repository (static-debian13) and tags only variants
    versioned = re.search(r"\d", tag) or re.search(r"-debian\d+$", name)
    return not tag or tag == "latest" or not versioned


def check_pinned_images(repo: Repo) -> list[Failure]:
    if not repo.exists(DOCKERFILE):
        return [Failure(DOCKERFILE, "no Dockerfile")]
    instructions = dockerfile_instructions(repo.text(DOCKERFILE))
    variables: dict[str, str] = {}
    for name, args, _ in instructions:
        if name == "FROM":
            break
        if name == "ARG":
            key, _, default = args.partition("=")
            variables[key.strip()] = default.strip().strip("\"'")
    failures: list[Failure] = []
    stages: set[str] = set()
    found = False
    for name, args, line in instructions:
        words = [w for w in args.split() if not w.startswith("--")]
        if name != "FROM" or not words:
            continue
        image = substitute(words[0], variables)
        earlier_stage = image.lower() in stages
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if earlier_stage or image == "scratch":
            continue
        found = True
        if unpinned(image):
            message = (
                f"FROM {image} is not pinned: use a version tag (node:24.11-alpine) "
                "or a digest (@sha256:...)"
            )
            failures.append(Failure(f"{DOCKERFILE}:{line}", message))
    if not found:
        failures.append(Failure(DOCKERFILE, "no base image found in any FROM line"))
    return failures


# ------------------------------------------------------------------------------------------------
# Kubernetes: the BUILT manifests of every overlay (what would really be applied)
# ------------------------------------------------------------------------------------------------
@dataclass
class Workload:
    overlay: str
    fix: str  # the source file to change
    doc: Doc
    pod: Doc

    def label(self, container: Doc | None = None) -> str:
        what = f"{self.doc.get('kind')}/{dig(self.doc, 'metadata', 'name')}"
        if container is not None:
            what += f" container {container.get('name')}"
        return f"{what} in {self.overlay.rsplit('/', 1)[-1]}"


def workloads(repo: Repo) -> Iterator[Workload]:
    for overlay, (docs, _) in repo.built().items():
        for doc in docs:
            kind = str(doc.get("kind", ""))
            if kind in POD_SPEC_PATHS:
                name = str(dig(doc, "metadata", "name") or "?")
                pod = dig(doc, *POD_SPEC_PATHS[kind])
                fix = repo.source_of(kind, name, overlay)
                yield Workload(overlay, fix, doc, pod if isinstance(pod, dict) else {})


def manifest_preconditions(repo: Repo) -> list[Failure]:
    if not repo.overlays():
        return [Failure(OVERLAYS, "no kustomize overlays to build: the manifests are missing")]
    failures = [
        Failure(f"{overlay}/kustomization.yaml", error)
        for overlay, (_, error) in repo.built().items()
        if error
    ]
    if not failures and not any(True for _ in workloads(repo)):
        failures.append(Failure(OVERLAYS, "the built manifests hold no workload (Deployment, ...)"))
    return failures


def containers(pod: Doc, *, init: bool = True) -> list[Doc]:
    out = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    if init:
        out += [c for c in pod.get("initContainers") or [] if isinstance(c, dict)]
    return out


def check_probes(repo: Repo) -> list[Failure]:
    failures = manifest_preconditions(repo)
    if failures:
        return failures
    for workload in workloads(repo):
        if workload.doc.get("kind") not in LONG_RUNNING:
            continue
        for container in containers(workload.pod, init=False):
            for probe, path in PROBE_PATHS.items():
                spec = container.get(probe)
                if not isinstance(spec, dict):
                    message = f"{workload.label(container)}: no {probe} (HTTP GET {path})"
                    failures.append(Failure(workload.fix, message))
                elif dig(spec, "httpGet", "path") != path:
                    message = f"{workload.label(container)}: {probe} must be an HTTP GET of {path}"
                    failures.append(Failure(workload.fix, f"{message}, got {spec}"))
    return failures


def check_resources(repo: Repo) -> list[Failure]:
    failures = manifest_preconditions(repo)
    if failures:
        return failures
    for workload in workloads(repo):
        for container in containers(workload.pod):
            missing = [
                f"{kind}.{resource}"
                for kind in ("requests", "limits")
                for resource in ("cpu", "memory")
                if not dig(container, "resources", kind, resource)
            ]
            if missing:
                message = f"{workload.label(container)}: resources lack {', '.join(missing)}"
                failures.append(Failure(workload.fix, message))
    return failures


def pod_problems(pod: Doc) -> list[str]:
    problems = [f"{key}: true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    problems += [
        f"hostPath volume {volume.get('name')}"
        for volume in pod.get("volumes") or []
        if isinstance(volume, dict) and "hostPath" in volume
    ]
    return problems


def container_problems(pod: Doc, container: Doc, uid: int | None) -> list[str]:
    """The Pod Security Standard 'restricted', plus a read-only root filesystem."""
    pod_context = pod.get("securityContext") or {}
    own = container.get("securityContext") or {}
    # runAsNonRoot, runAsUser and seccompProfile: the container's value wins over the pod's
    effective = {key: own.get(key, pod_context.get(key)) for key in ("runAsNonRoot", "runAsUser")}
    seccomp = dig(own.get("seccompProfile", pod_context.get("seccompProfile")), "type")
    problems = []
    if effective["runAsNonRoot"] is not True:
        problems.append("runAsNonRoot is not true")
    if effective["runAsUser"] == 0:
        problems.append("runAsUser is 0 (root)")
    elif effective["runAsUser"] not in (None, uid) and uid is not None:
        problems.append(f"runAsUser {effective['runAsUser']} differs from the image's USER {uid}")
    if own.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if own.get("privileged"):
        problems.append("privileged is true")
    if "ALL" not in [str(c).upper() for c in dig(own, "capabilities", "drop") or []]:
        problems.append("capabilities.drop lacks ALL")
    added = set(dig(own, "capabilities", "add") or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"capabilities.add {sorted(added)}")
    if seccomp not in {"RuntimeDefault", "Localhost"}:
        problems.append("seccompProfile.type is not RuntimeDefault")
    if own.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    return problems


def check_security_context(repo: Repo) -> list[Failure]:
    failures = manifest_preconditions(repo)
    if failures:
        return failures
    uid = image_uid(repo)
    for workload in workloads(repo):
        problems = pod_problems(workload.pod)
        if problems:
            failures.append(Failure(workload.fix, f"{workload.label()}: {', '.join(problems)}"))
        for container in containers(workload.pod):
            problems = container_problems(workload.pod, container, uid)
            if problems:
                message = f"{workload.label(container)}: {'; '.join(problems)}"
                failures.append(Failure(workload.fix, message))
    return failures


# ------------------------------------------------------------------------------------------------
# GitHub Actions workflows
# ------------------------------------------------------------------------------------------------
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
PINNED_DOCKER = re.compile(r"^docker://.+@sha256:[0-9a-f]{64}$")


def loaded_workflows(repo: Repo) -> tuple[list[tuple[str, Doc]], list[Failure]]:
    loaded = repo.workflows()
    if not loaded:
        message = "no workflows: CI must run `make check` and `make readiness`"
        return [], [Failure(WORKFLOWS, message)]
    good: list[tuple[str, Doc]] = []
    failures = []
    for file, doc in loaded:
        if isinstance(doc, Exception):
            failures.append(Failure(file, f"not valid YAML: {doc}"))
        elif not isinstance(doc.get("jobs"), dict):
            failures.append(Failure(file, "not a workflow (no jobs)"))
        else:
            good.append((file, doc))
    return good, failures


def uses_of(steps: Any) -> list[str]:
    return [str(s["uses"]) for s in steps or [] if isinstance(s, dict) and s.get("uses")]


def check_pinned_actions(repo: Repo) -> list[Failure]:
    loaded, failures = loaded_workflows(repo)
    refs: list[tuple[str, str, str]] = []  # (file, where, ref)
    for file, doc in loaded:
        for job_id, job in doc["jobs"].items():
            own = [str(job["uses"])] if isinstance(job, dict) and job.get("uses") else []
            refs += [(file, f"job {job_id}", ref) for ref in own + uses_of(dig(job, "steps"))]
    # local composite actions (.github/actions/<name>/action.yml) run steps too
    for path in sorted((repo.root / ".github").glob("actions/*/action.y*ml")):
        try:
            action = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        steps = uses_of(dig(action, "runs", "steps"))
        refs += [(repo.rel(path), "composite action", ref) for ref in steps]
    for file, where, ref in refs:
        # ./ and $/ (GitHub's self-repository syntax) run this repository's own code at this commit
        if ref.startswith(("./", "$/")) or PINNED.match(ref) or PINNED_DOCKER.match(ref):
            continue
        message = f"{where}: `{ref}` is not pinned to a full commit SHA (owner/action@<40 hex>)"
        failures.append(Failure(f"{file}:{line_of(repo.text(file), ref)}", message))
    return failures


def read_only(permissions: Any) -> bool:
    if permissions in (None, {}, "read-all"):
        return True
    if not isinstance(permissions, dict):
        return False
    return all(value in ("read", "none") for value in permissions.values())


def check_permissions(repo: Repo) -> list[Failure]:
    loaded, failures = loaded_workflows(repo)
    for file, doc in loaded:
        top = doc.get("permissions", ...)
        if top is not ... and not read_only(top):
            where = f"{file}:{line_of(repo.text(file), 'permissions')}"
            message = (
                f"workflow-level permissions {top!r} grant write: keep the top read-only "
                "(`contents: read`) and grant write scopes only on the job that needs them"
            )
            failures.append(Failure(where, message))
        for job_id, job in doc["jobs"].items():
            if dig(job, "permissions") == "write-all":
                message = f"job {job_id}: permissions write-all: name the scopes it needs"
                failures.append(Failure(file, message))
            if top is ... and not (isinstance(job, dict) and "permissions" in job):
                message = (
                    f"job {job_id} inherits the repository's default token permissions: "
                    "declare `permissions:` at the top of the workflow"
                )
                failures.append(Failure(file, message))
    return failures


TRIVY_IGNORES = ".trivyignore.yaml"
ACCEPTANCE_KEYS = ("id", "statement", "expired_at")


def check_vulnerability_scans(repo: Repo) -> list[Failure]:
    """CI audits the dependencies that ship, the deploy workflow's Trivy scan fails the release on
    high and critical findings, and every accepted finding has a reason and an expiry date."""
    loaded, failures = loaded_workflows(repo)
    steps = [
        step
        for _, doc in loaded
        for job in doc["jobs"].values()
        for step in dig(job, "steps") or []
        if isinstance(step, dict)
    ]
    audit = repo.facts.get("audit_command", "")
    if loaded and not any(str(step.get("run", "")).strip() == audit for step in steps):
        message = f"no step runs the dependency audit `{audit}`"
        failures.append(Failure(f"{WORKFLOWS}/ci.yml", message))
    gates = [
        step
        for step in steps
        if str(step.get("uses", "")).startswith("aquasecurity/trivy-action@")
        and str(dig(step, "with", "exit-code")) == "1"
        and {"HIGH", "CRITICAL"} <= set(str(dig(step, "with", "severity") or "").split(","))
    ]
    if loaded and not gates:
        message = "no Trivy image scan failing on high and critical findings (exit-code: 1)"
        failures.append(Failure(f"{WORKFLOWS}/deploy.yml", message))
    if repo.exists(TRIVY_IGNORES):
        try:
            accepted = dig(yaml.safe_load(repo.text(TRIVY_IGNORES)), "vulnerabilities") or []
        except yaml.YAMLError as error:
            return [*failures, Failure(TRIVY_IGNORES, f"not YAML: {error}")]
        entries = accepted if isinstance(accepted, list) else [accepted]
        for number, item in enumerate(entries, 1):
            entry: dict[str, Any] = item if isinstance(item, dict) else {}
            missing = [key for key in ACCEPTANCE_KEYS if not entry.get(key)]
            name = entry.get("id") or f"entry {number}"
            where = f"{TRIVY_IGNORES}:{line_of(repo.text(TRIVY_IGNORES), str(name))}"
            if missing:
                message = f"{name} lacks {', '.join(missing)}: say why, and until when"
                failures.append(Failure(where, message))
            elif not hasattr(entry["expired_at"], "year"):
                message = f"{name}: expired_at {entry['expired_at']!r} is not a date (YYYY-MM-DD)"
                failures.append(Failure(where, message))
    return failures


def container_env(container: Doc, config_maps: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's variables with literal values: its ConfigMaps (envFrom), then `env`."""
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        name = dig(source, "configMapRef", "name")
        values.update(config_maps.get(str(name), {}))
    for variable in container.get("env") or []:
        if isinstance(variable, dict) and "value" in variable:
            values[str(variable.get("name"))] = str(variable["value"])
    return values


def egress_allows(policies: list[Doc], pod_labels: dict[str, Any], port: int) -> bool:
    """Whether the NetworkPolicies that restrict the pod's egress let it out on TCP `port`
    (where to is the platform's business: the rule's selectors are not judged)."""
    selecting = [
        policy
        for policy in policies
        if "Egress" in (dig(policy, "spec", "policyTypes") or [])
        and all(
            pod_labels.get(key) == value
            for key, value in (dig(policy, "spec", "podSelector", "matchLabels") or {}).items()
        )
    ]
    if not selecting:
        return True
    return any(
        not rule.get("ports")
        or any(
            dig(entry, "port") == port and dig(entry, "protocol") in (None, "TCP")
            for entry in rule["ports"]
        )
        for policy in selecting
        for rule in dig(policy, "spec", "egress") or []
        if isinstance(rule, dict)
    )


def url_port(url: str) -> int | None:
    """The TCP port of an http(s) URL (its scheme's default when it names none); None when
    `url` is not one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return port or (443 if parts.scheme == "https" else 80)


def check_traces_exported(repo: Repo) -> list[Failure]:
    """Every server sends its traces to an OTLP endpoint, and its NetworkPolicy lets it."""
    failures = manifest_preconditions(repo)
    if failures:
        return failures
    built = repo.built()
    for workload in workloads(repo):
        if workload.doc.get("kind") not in LONG_RUNNING:
            continue
        docs = built[workload.overlay][0]
        config_maps = {
            str(dig(doc, "metadata", "name")): {
                str(key): str(value) for key, value in (doc.get("data") or {}).items()
            }
            for doc in docs
            if doc.get("kind") == "ConfigMap"
        }
        policies = [doc for doc in docs if doc.get("kind") == "NetworkPolicy"]
        pod_labels = dig(workload.doc, "spec", "template", "metadata", "labels") or {}
        for container in containers(workload.pod, init=False):
            env = container_env(container, config_maps)
            endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
                "OTEL_EXPORTER_OTLP_ENDPOINT", ""
            )
            port = url_port(endpoint)
            if port is None:
                problem = "is empty" if not endpoint else f"is not an http(s) URL: {endpoint!r}"
                message = f"{workload.label(container)}: OTEL_EXPORTER_OTLP_ENDPOINT {problem}"
                failures.append(Failure(f"{K8S}/base/kustomization.yaml", message))
            elif not egress_allows(policies, pod_labels, port):
                message = (
                    f"{workload.label(container)}: no NetworkPolicy egress rule allows "
                    f"TCP port {port} of {endpoint}"
                )
                failures.append(Failure(f"{K8S}/base/networkpolicy.yaml", message))
    return failures


def check_ci_runs_readiness(repo: Repo) -> list[Failure]:
    loaded, failures = loaded_workflows(repo)
    for _, doc in loaded:
        for job in doc["jobs"].values():
            steps = [s for s in dig(job, "steps") or [] if isinstance(s, dict)]
            if any("make readiness" in str(step.get("run", "")) for step in steps):
                return failures
    if loaded:
        failures.append(Failure(f"{WORKFLOWS}/ci.yml", "no workflow step runs `make readiness`"))
    return failures


# ------------------------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------------------------
TOKEN_PATTERNS = [
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{40,})\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Stripe live key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}\b")),
    ("JSON web token", re.compile(r"\beyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}")),
]
# NAME = "value" / NAME: value where NAME says secret and the value is a literal that looks random.
ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:secret|passw(?:or)?d|token|api[_-]?key|private[_-]?key|access[_-]?key"
    r"|credential)[\w.-]*)[\"']?\s*[:=]\s*"
    r"(?:[\"']([^\"'\s]{8,})[\"']|([A-Za-z0-9+/=_\-]{16,})(?=\s*(?:$|[#,;])))"
)
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:([^/\s:@\"']+)@")
PLACEHOLDER = re.compile(
    r"(?i)example|change[-_]?me|placeholder|dummy|insecure|not[-_]?(?:a[-_]?)?secret|"
    r"not[-_]for[-_]production|fake|sample|test|local|dev|redacted|xxx|your[-_]|"
    r"replace|passw(?:or)?d|\$\{|\$\(|<[^>]*>|\*\*\*|(?-i:^[A-Z_]+$)"
)


def looks_random(value: str) -> bool:
    """Long enough, mixes letters and digits, and has the entropy of a generated value."""
    if len(value) < 12 or not re.search(r"\d", value) or not re.search(r"[A-Za-z]", value):
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= MIN_ENTROPY_BITS


def secret_findings(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if SUPPRESSION_MARK in line:
            continue
        for kind, pattern in TOKEN_PATTERNS:
            if pattern.search(line):
                yield number, kind
        for match in ASSIGNMENT.finditer(line):
            value = match.group(2) or match.group(3)
            if not PLACEHOLDER.search(value) and looks_random(value):
                yield number, f"{match.group(1)} holds a literal secret-looking value"
        for match in URL_PASSWORD.finditer(line):
            password = match.group(1)
            if not PLACEHOLDER.search(password) and len(password) >= MIN_PASSWORD_LENGTH:
                yield number, "a URL carries a password"


def committed_secret_objects(repo: Repo) -> Iterator[Failure]:
    """Kubernetes Secrets with real values under deploy/: they belong in a secret store."""
    for file, doc in repo.k8s_sources():
        if doc.get("kind") != "Secret":
            continue
        values = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
        real = [k for k, v in values.items() if v and not PLACEHOLDER.search(str(v))]
        if real:
            yield Failure(
                file,
                f"Secret {dig(doc, 'metadata', 'name')} commits values for {', '.join(real)}: "
                "create it from the secret store (kubectl create secret, external-secrets)",
            )


def check_secrets(repo: Repo) -> list[Failure]:
    failures = list(committed_secret_objects(repo))
    for rel in repo.files():
        path = repo.root / rel
        try:
            if path.stat().st_size > MAX_SCANNED_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data:
            continue
        for line, what in secret_findings(data.decode("utf-8", errors="replace")):
            message = (
                f"{what}: move it to the environment (a Secret), or mark a false positive "
                f"with `{SUPPRESSION_MARK}`"
            )
            failures.append(Failure(f"{rel}:{line}", message))
    return failures


# ------------------------------------------------------------------------------------------------
# Configuration: .env.example documents every variable the source reads
# ------------------------------------------------------------------------------------------------
@dataclass
class EnvPattern:
    regex: re.Pattern[str]
    files: re.Pattern[str] | None  # only in matching paths
    upper: bool  # the captured name is upper-cased (a settings field named like the variable)


def source_files(repo: Repo) -> Iterator[tuple[str, Path]]:
    scan = repo.facts["env_scan"]
    exclude = re.compile(scan["exclude"]) if scan.get("exclude") else None
    for source in repo.facts["source_paths"]:
        top = repo.root / source
        paths = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in paths:
            rel = repo.rel(path)
            if not path.is_file() or path.suffix not in scan["suffixes"]:
                continue
            if (exclude and exclude.search(rel)) or SKIP_DIRS.intersection(Path(rel).parts):
                continue
            yield rel, path


def variables_read(repo: Repo) -> dict[str, str]:
    """NAME -> first place (file:line) the service's source reads it."""
    patterns = [
        EnvPattern(
            re.compile(p["regex"]),
            re.compile(p["files"]) if p.get("files") else None,
            bool(p.get("upper")),
        )
        for p in repo.facts["env_scan"]["patterns"]
    ]
    found: dict[str, str] = {}
    for rel, path in source_files(repo):
        active = [p for p in patterns if not p.files or p.files.search(rel)]
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            for pattern in active:
                for match in pattern.regex.finditer(line):
                    name = next(group for group in match.groups() if group)
                    found.setdefault(name.upper() if pattern.upper else name, f"{rel}:{number}")
    return found


def documented_variables(repo: Repo) -> set[str]:
    names = set()
    for line in repo.text(ENV_EXAMPLE).splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_]\w*)\s*=", line)
        if match:
            names.add(match.group(1))
    return names


def check_env_documented(repo: Repo) -> list[Failure]:
    if not repo.exists(ENV_EXAMPLE):
        return [Failure(ENV_EXAMPLE, "missing: it must list every variable the service reads")]
    read = variables_read(repo)
    if not read:
        message = (
            f"found no environment variable read in {', '.join(repo.facts['source_paths'])}: "
            "the service reads at least PORT, so env_scan does not match the source's idiom"
        )
        return [Failure("scripts/readiness.json", message)]
    documented = documented_variables(repo)
    return [
        Failure(
            ENV_EXAMPLE,
            f"{name} is read ({where}) but not documented: add `{name}=<default>` "
            "with a comment saying what it means",
        )
        for name, where in sorted(read.items())
        if name not in documented
    ]


# ------------------------------------------------------------------------------------------------
# The checklist itself: every ticked item names files that exist
# ------------------------------------------------------------------------------------------------
TICKED = re.compile(r"^\s*[-*] \[[xX]\] (.*)$")
GUARANTEED = re.compile(r"Guaranteed by ((?:`[^`]+`(?:, | and )?)+)")


def ticked_items(text: str) -> Iterator[tuple[int, str, list[str]]]:
    for number, line in enumerate(text.splitlines(), 1):
        match = TICKED.match(line)
        if match:
            guarantee = GUARANTEED.search(match.group(1))
            files = re.findall(r"`([^`]+)`", guarantee.group(1)) if guarantee else []
            yield number, match.group(1), files


def check_checklist(repo: Repo) -> list[Failure]:
    if not repo.exists(CHECKLIST):
        return [Failure(CHECKLIST, "missing")]
    failures = []
    for number, item, files in ticked_items(repo.text(CHECKLIST)):
        where = f"{CHECKLIST}:{number}"
        if not files:
            failures.append(Failure(where, f"ticked item names no file: {item[:60]}"))
        failures += [
            Failure(
                where,
                f"ticked item names {file}, which does not exist: untick it or restore the file",
            )
            for file in files
            if not repo.exists(file)
        ]
    return failures


RULES = [
    Rule("image-user", "the image runs as a numeric non-root USER", check_user),
    Rule("image-healthcheck", "the image declares a HEALTHCHECK", check_healthcheck),
    Rule("image-pinned", "base images are pinned to a version or digest", check_pinned_images),
    Rule("k8s-probes", "startup, liveness and readiness probes on every server", check_probes),
    Rule("k8s-resources", "CPU and memory requests and limits on every container", check_resources),
    Rule(
        "k8s-security-context",
        "restricted security context (non-root, no privilege escalation, no capabilities, "
        "seccomp, read-only root filesystem)",
        check_security_context,
    ),
    Rule("actions-pinned", "every action is pinned to a full commit SHA", check_pinned_actions),
    Rule("workflow-permissions", "workflows grant least privilege", check_permissions),
    Rule("ci-readiness", "CI runs this check (`make readiness`)", check_ci_runs_readiness),
    Rule(
        "vulnerability-scans",
        "dependencies audited in CI, the image scanned before release, accepted findings expire",
        check_vulnerability_scans,
    ),
    Rule(
        "traces-exported",
        "servers send traces to an OTLP endpoint their NetworkPolicy lets them reach",
        check_traces_exported,
    ),
    Rule("no-secrets", "no secret-looking values committed", check_secrets),
    Rule("env-documented", ".env.example lists every variable read", check_env_documented),
    Rule("checklist-files", "every ticked checklist item names files that exist", check_checklist),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=HERE.parent, help="repository to check (default: this one)"
    )
    parser.add_argument(
        "--rule", action="append", choices=[r.name for r in RULES], help="run only this rule"
    )
    parser.add_argument(
        "--show-env", action="store_true", help="list the variables the source reads, then exit"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    facts = json.loads((root / "scripts" / "readiness.json").read_text(encoding="utf-8"))
    repo = Repo(root, facts)
    if args.show_env:
        documented = documented_variables(repo) if repo.exists(ENV_EXAMPLE) else set()
        for name, where in sorted(variables_read(repo).items()):
            status = "documented" if name in documented else "UNDOCUMENTED"
            print(f"{name}\t{where}\t{status}")
        return 0
    rules = [rule for rule in RULES if not args.rule or rule.name in args.rule]
    failed = 0
    for rule in rules:
        failures = rule.check(repo)
        print(f"{'FAIL' if failures else 'ok':4}  {rule.name:20}  {rule.description}")
        for failure in failures:
            print(f"      {failure.file}: {failure.message}")
        failed += bool(failures)
    advice = f"; fix the files named above (see {CHECKLIST})" if failed else ""
    print(f"\nreadiness: {len(rules) - failed} of {len(rules)} rules hold{advice}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
