#!/usr/bin/env python3
"""Image size on paper, where no Docker engine exists: the runtime base image plus what the
Dockerfile's runtime stage adds, built natively and measured on disk.

What each runtime stage adds (see dockerfile_runtime() of includes/<language>/build.jinja):

* go: the static binary (`make build`: CGO off, -trimpath, -s -w), on distroless/static;
* node: dist/, the production node_modules (`npm ci --omit=dev`) and package.json, on
  node:<version>-alpine, minus npm, corepack and yarn, which the runtime stage deletes;
* django: /app: the virtual environment without the dev group (`uv sync --no-dev`, byte-compiled
  as the image does), the code and the collected static files, on python:<version>-slim.

The base images' sizes are not measurable here (no registry access for images): BASE_SIZES_MB
holds their uncompressed linux/amd64 sizes as published by the registries at the time of writing,
rounded; treat every total as an estimate (+-10 %). The template's own GitHub workflow
(.github/workflows/e2e.yml, job "image") builds each image with Docker and writes its measured
size to the job summary: those figures replace these estimates in docs/performance.md.

    .venv/bin/python bench/image_size.py
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import tempfile
from pathlib import Path

from benchlib import du, machine, render, sh, snapshot

# Uncompressed size of the runtime base images (linux/amd64), MB, approximate.
BASE_SIZES_MB = {
    "gcr.io/distroless/static-debian1*:nonroot": 2,
    "node:2*-alpine": 160,
    "python:3.1*-slim": 125,
}
MB = 1_000_000


def runtime_image(project: Path) -> str:
    froms = re.findall(r"^FROM\s+(\S+)", (project / "Dockerfile").read_text(), re.MULTILINE)
    return froms[-1]


def base_size(image: str) -> int | None:
    return next((size for pattern, size in BASE_SIZES_MB.items() if fnmatch.fnmatch(image, pattern)), None)


def added_go(project: Path) -> tuple[int, str]:
    sh(["make", "build"], cwd=project, CGO_ENABLED="0")
    return du(project / "bin" / "server"), "the static binary"


def added_node(project: Path) -> tuple[int, str]:
    sh(["make", "setup", "build"], cwd=project)
    prod = project.parent / "prod-deps"
    prod.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy(project / name, prod / name)
    sh(["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=prod)
    (project / "dist" / ".tsbuildinfo").unlink(missing_ok=True)
    added = du(prod / "node_modules", project / "dist", project / "package.json")
    npm = Path(sh(["npm", "root", "-g"]).strip()) / "npm"
    removed = du(npm) if npm.is_dir() else 0  # this machine's npm: about what the stage deletes
    return (
        added - removed,
        f"dist + production node_modules, minus npm ({removed / MB:.0f} MB, as measured here)",
    )


def added_django(project: Path) -> tuple[int, str]:
    venv = project / ".venv"
    sh(
        ["uv", "sync", "--frozen", "--no-dev", "--no-install-project"],
        cwd=project,
        UV_COMPILE_BYTECODE="1",
        UV_PROJECT_ENVIRONMENT=str(venv),
    )
    sh(
        [str(venv / "bin" / "python"), "manage.py", "collectstatic", "--noinput"],
        cwd=project,
        APP_ENV="development",
    )
    sh([str(venv / "bin" / "python"), "-m", "compileall", "-q", "config", "ops", "service"], cwd=project)
    code = [
        project / name
        for name in (
            "manage.py",
            "gunicorn.conf.py",
            "config",
            "ops",
            "service",
            "staticfiles",
            "pyproject.toml",
            "uv.lock",
        )
        if (project / name).exists()
    ]
    return du(venv, *code), "the venv without dev dependencies (byte-compiled), code, static files"


ADDED = {"go": added_go, "node": added_node, "django": added_django}


def main() -> None:
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        template = snapshot(tmp_path)
        for language in ("go", "node", "django"):
            project = render(template, tmp_path / language / "project", language=language)
            image = runtime_image(project)
            added, what = ADDED[language](project)
            rows.append((language, image, base_size(image), added / MB, what))
    print(f"\n{'language':<8} {'runtime base':<46}{'base MB':>8}{'added MB':>9}{'total MB':>9}")
    for language, image, base, added, what in rows:
        total = f"{base + added:9.0f}" if base is not None else "        ?"
        print(
            f"{language:<8} {image:<46}{base if base is not None else '?':>8}{added:>9.1f}{total}   ({what})"
        )
    print("\nestimates (base sizes approximate); measured sizes: .github/workflows/e2e.yml job summary")


if __name__ == "__main__":
    main()
