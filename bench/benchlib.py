"""Shared pieces of the benchmark scripts: the machine they ran on, renders from a clean snapshot."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def machine() -> str:
    """One line: cores, CPU model, memory, load: the context every figure needs."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown memory"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {cpu}, {memory}, Python {platform.python_version()}, load average {load}"


def env(**extra: str) -> dict[str, str]:
    """The tools' environment: this venv's bin first (go, uv), no downloads of toolchains.

    Go modules come from the proxy the environment names (go.sum pins them): on a fresh machine
    the module cache is empty, so GOPROXY=off would stop the Go renders from building."""
    result = dict(os.environ)
    result["PATH"] = f"{VENV_BIN}{os.pathsep}{result.get('PATH', '')}"
    result.update(GOTOOLCHAIN="local", UV_PYTHON_DOWNLOADS="never")
    result.update(extra)
    return result


def sh(cmd: list[str], cwd: Path | None = None, **extra: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env(**extra), text=True, capture_output=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def snapshot(where: Path) -> Path:
    """A clean clone of HEAD, so uncommitted work does not add copier's dirty-template path."""
    clone = where / "template"
    sh(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)])
    return clone


def render(template: Path, dest: Path, vcs_ref: str = "HEAD", **answers: str) -> Path:
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    sh(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            vcs_ref,
            *data,
            str(template),
            str(dest),
        ]
    )
    return dest


def du(*paths: Path) -> int:
    """Bytes of regular files under paths (what a COPY adds to a layer, before compression)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
            continue
        for root, _, files in os.walk(path):
            for name in files:
                file = Path(root) / name
                if not file.is_symlink():
                    total += file.stat().st_size
    return total
