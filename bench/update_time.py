#!/usr/bin/env python3
"""Time of a typical `copier update` against a plain `copier copy` of the same template, same run.

A typical update: a project rendered from one template release, committed, then updated to the
next release, which changes a few managed files (here: a line in the README, the Makefile and
the Dockerfile skeleton). `copier update` re-renders the old release and the new one and merges
the difference into the project, so it costs more than one copy; this prints by how much.

    .venv/bin/python bench/update_time.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine, render, sh, snapshot

COPIER = [sys.executable, "-m", "copier"]
GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def next_release(template: Path) -> tuple[str, str]:
    """Commit a typical small release on top of the snapshot; returns (old, new) commits."""
    old = sh(["git", "rev-parse", "HEAD"], cwd=template).strip()
    for rel, line in [
        ("template/README.md.jinja", "\nSee docs/runbook.md when paged.\n"),
        ("template/Makefile.jinja", "\n# release note: nothing to do\n"),
        ("template/Dockerfile.jinja", "\n# release note: nothing to do\n"),
    ]:
        with open(template / rel, "a") as file:
            file.write(line)
    sh(["git", "add", "-A"], cwd=template)
    sh(["git", *GIT_ID, "commit", "-qm", "next release"], cwd=template)
    return old, sh(["git", "rev-parse", "HEAD"], cwd=template).strip()


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        template = snapshot(tmp_path)
        old, new = next_release(template)
        print(f"{'language':<10}{'copy s':>9}{'update s':>10}{'ratio':>8}")
        for language in ("node", "go", "django"):
            copies = []
            for i in range(args.runs):
                dest = tmp_path / f"copy-{language}-{i}"
                copies.append(
                    timed(
                        [
                            *COPIER,
                            "copy",
                            "--trust",
                            "--defaults",
                            "--quiet",
                            "--vcs-ref",
                            new,
                            "--data",
                            f"language={language}",
                            str(template),
                            str(dest),
                        ]
                    )
                )
            # the project as its owner has it: rendered from the old release, committed
            project = render(template, tmp_path / f"project-{language}", vcs_ref=old, language=language)
            sh(["git", "init", "-q"], cwd=project)
            sh(["git", "add", "-A"], cwd=project)
            sh(["git", *GIT_ID, "commit", "-qm", "from the old release"], cwd=project)
            updates = []
            for _ in range(args.runs):
                updates.append(
                    timed(
                        [
                            *COPIER,
                            "update",
                            "--trust",
                            "--defaults",
                            "--quiet",
                            "--vcs-ref",
                            new,
                            "--skip-answered",
                        ],
                        cwd=project,
                    )
                )
                changed = sh(["git", "status", "--porcelain"], cwd=project)
                assert "README.md" in changed, f"the update changed nothing: {changed!r}"
                sh(["git", "reset", "-q", "--hard"], cwd=project)
                sh(["git", "clean", "-qfdx"], cwd=project)
            copy_s, update_s = statistics.median(copies), statistics.median(updates)
            print(f"{language:<10}{copy_s:>9.2f}{update_s:>10.2f}{update_s / copy_s:>8.2f}")


if __name__ == "__main__":
    main()
