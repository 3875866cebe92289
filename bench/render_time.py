#!/usr/bin/env python3
"""Render time of this template against Copier's own floor, measured in the same run.

The floor is a one-question, one-file template in a git repository, copied the same way (the
`copier` CLI, `--trust --defaults`, from a local git repository). A second baseline, "same tree,
plain", is a template with this one's file tree, one question, no extensions and one-line files:
what Copier itself costs per path. Prints median seconds per language and the ratio to the floor;
the target is at most 1.3x.

    .venv/bin/python bench/render_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIER = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", "HEAD"]


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_floor(where: Path) -> Path:
    floor = where / "floor"
    (floor / "template").mkdir(parents=True)
    (floor / "copier.yml").write_text("_subdirectory: template\nname:\n  type: str\n  default: x\n")
    (floor / "template" / "README.md.jinja").write_text("# {{ name }}\n")
    git("init", "-q", cwd=floor)
    git("add", "-A", cwd=floor)
    git("-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "floor", cwd=floor)
    return floor


def make_plain_tree(where: Path, template: Path) -> Path:
    """Copier's cost per path: a template with this one's tree (every folder and file name under
    template/) but one question, no extensions and a one-line body in every file."""
    plain = where / "plain-tree"
    (plain / "template").mkdir(parents=True)
    (plain / "copier.yml").write_text("_subdirectory: template\nname:\n  type: str\n  default: x\n")
    for path in sorted((template / "template").rglob("*")):
        target = plain / "template" / path.relative_to(template / "template")
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.write_text("{{ name }}\n" if path.suffix == ".jinja" else "x\n")
    git("init", "-q", cwd=plain)
    git("add", "-A", cwd=plain)
    git("-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "plain", cwd=plain)
    return plain


def snapshot_of_this_template(where: Path) -> Path:
    """A clean clone of HEAD, so uncommitted work does not add copier's dirty-template path."""
    clone = where / "template"
    git("clone", "-q", "--no-hardlinks", str(ROOT), str(clone), cwd=where)
    return clone


def time_copy(src: Path, dst_root: Path, data: list[str], runs: int) -> float:
    times = []
    for i in range(runs):
        dst = dst_root / f"out-{i}"
        start = time.perf_counter()
        subprocess.run([*COPIER, *data, str(src), str(dst)], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        shutil.rmtree(dst)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        floor = make_floor(tmp_path)
        template = snapshot_of_this_template(tmp_path)
        time_copy(floor, tmp_path, [], 1)  # warm the filesystem and import caches
        base = time_copy(floor, tmp_path, [], args.runs)
        print(f"{'template':<22}{'median s':>10}{'ratio':>8}")
        print(f"{'copier floor':<22}{base:>10.3f}{1.0:>8.2f}")
        plain = time_copy(make_plain_tree(tmp_path, template), tmp_path, [], args.runs)
        files = sum(1 for path in (template / "template").rglob("*") if path.is_file())
        print(f"{'same tree, plain':<22}{plain:>10.3f}{plain / base:>8.2f}   ({files} files, every one copied)")
        worst = 0.0
        for language in ("node", "go", "django"):
            seconds = time_copy(template, tmp_path, ["--data", f"language={language}"], args.runs)
            worst = max(worst, seconds / base)
            print(f"{language:<22}{seconds:>10.3f}{seconds / base:>8.2f}")
        print(f"worst ratio {worst:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
