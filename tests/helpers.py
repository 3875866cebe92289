"""Shared test helpers: a rendered project and the tools run over it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LANGUAGES = ["node", "go", "django"]
STRATEGIES = ["rolling", "blue-green", "canary"]
MATRIX = [(language, strategy) for language in LANGUAGES for strategy in STRATEGIES]

# `make test` runs this suite, and make exports its level, flags and jobserver to its children.
# A rendered project's own `make` must run as it does in a user's shell: without them it prints no
# "Entering directory" lines and takes no job slots from the outer make.
for variable in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
    os.environ.pop(variable, None)


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for tools: the test virtualenv's bin first (hadolint, go, shellcheck...)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(cmd: list[str] | str, cwd: Path | None = None, check: bool = True, timeout: float = 600,
        **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run a command and, when check is set, fail with its whole output."""
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(**extra_env), text=True, capture_output=True,
                          timeout=timeout, shell=isinstance(cmd, str))
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode} in {cwd}\n--- stdout\n{proc.stdout}"
                             f"\n--- stderr\n{proc.stderr}")
    return proc


class Project:
    """A rendered repository, read-only by convention: copy it (``clone_to``) before changing it."""

    def __init__(self, path: Path, answers: dict[str, Any]):
        self.path = Path(path)
        self.answers = answers

    def __repr__(self) -> str:
        return f"<Project {self.answers}>"

    @property
    def language(self) -> str:
        return self.answers["language"]

    @property
    def strategy(self) -> str:
        return self.answers.get("deployment_strategy", "rolling")

    @cached_property
    def recorded_answers(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / ".copier-answers.yml").read_text())

    def files(self) -> list[Path]:
        """Every file of the render, relative paths, without VCS or dependency folders."""
        skip = {".git", "node_modules", ".venv", "__pycache__"}
        return sorted(p.relative_to(self.path) for p in self.path.rglob("*")
                      if p.is_file() and not skip.intersection(p.relative_to(self.path).parts))

    def text(self, rel: str) -> str:
        return (self.path / rel).read_text()

    def yaml(self, rel: str) -> Any:
        return yaml.safe_load(self.text(rel))

    def yaml_files(self) -> list[Path]:
        return [p for p in self.files() if p.suffix in {".yml", ".yaml"}]

    def k8s_objects(self, env: str) -> list[dict[str, Any]]:
        """The objects `kubectl kustomize deploy/k8s/overlays/<env>` builds (cached per render)."""
        cache = self.__dict__.setdefault("_k8s_builds", {})
        if env not in cache:
            built = run(["kubectl", "kustomize", f"deploy/k8s/overlays/{env}"], cwd=self.path, timeout=120)
            cache[env] = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
        return cache[env]

    def k8s_object(self, env: str, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.k8s_objects(env) if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(matches) == 1, f"{env}: expected one {kind}/{name}, found {len(matches)}"
        return matches[0]

    def k8s_container(self, env: str, deployment: str | None = None) -> dict[str, Any]:
        """The service container of a Deployment (default: the first) of an environment's build."""
        deployments = [o for o in self.k8s_objects(env) if o["kind"] == "Deployment"
                       and deployment in (None, o["metadata"]["name"])]
        assert deployments, f"{env}: no Deployment {deployment or ''}"
        return deployments[0]["spec"]["template"]["spec"]["containers"][0]

    def clone_to(self, dest: Path) -> "Project":
        """A private, writable copy (for tests that install, build or edit)."""
        shutil.copytree(self.path, dest, symlinks=True)
        return Project(dest, self.answers)
