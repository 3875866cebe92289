"""Layer 3, container image: every render's Dockerfile and .dockerignore, checked statically.

No Docker engine runs on the development machines; the template's own GitHub workflow builds the
images. Here: hadolint, the pinning and runtime rules from the parsed Dockerfile, and the
.dockerignore checked in both directions against the Dockerfile's COPY lines, with Docker's own
pattern matcher (the `docker` SDK's PatternMatcher).
"""

from __future__ import annotations

import json
import re
import shlex

import markdown
import pytest
from docker.utils.build import PatternMatcher
from dockerfile_parse import DockerfileParser
from helpers import run

from extensions.facts import FACTS

# What must never reach a build context, whatever the language.
MUST_EXCLUDE = [".git/HEAD", ".env", ".env.production", ".github/workflows/ci.yml", "docs/runbook.md",
                "deploy/k8s/base/kustomization.yaml", "compose.yaml", ".vscode/settings.json",
                "notes.swp", ".DS_Store", ".copier-answers.yml",
                # secrets at any depth: the Dockerfiles copy whole source folders
                "src/.env", "internal/app/.env.local", "config/.env", "certs/server.pem", "a/b/tls.key",
                "service/.npmrc", ".npmrc", "deep/er/still/.env.production"]


def parse(project):
    return DockerfileParser(path=str(project.path / "Dockerfile")).structure


def final_stage(structure):
    last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    return structure[last_from:]


def test_syntax_directive_first(project):
    assert project.text("Dockerfile").splitlines()[0] == "# syntax=docker/dockerfile:1"


def test_hadolint_reports_nothing(project):
    proc = run(["hadolint", "--no-color", "--failure-threshold", "style", "Dockerfile"],
               cwd=project.path, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_base_images_pinned(project):
    parser = DockerfileParser(path=str(project.path / "Dockerfile"))
    stages = {ins["value"].split()[-1].lower() for ins in parser.structure
              if ins["instruction"] == "FROM" and " as " in ins["value"].lower()}
    images = [image for image in parser.parent_images if image.lower() not in stages]
    assert images
    for image in images:
        name, _, tag = image.partition("@")[0].rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        # distroless names its release in the repository (static-debian13) and tags only variants
        # (nonroot): the repository name carries the version there.
        versioned = re.search(r"\d", tag) or re.search(r"-debian\d+$", name)
        assert "@sha256:" in image or (tag and tag != "latest" and versioned), \
            f"{image} is not pinned to a version"


def test_final_stage_runs_as_numeric_non_root_with_healthcheck(project):
    facts = FACTS[project.language]
    stage = final_stage(parse(project))
    by = {}
    for ins in stage:
        by.setdefault(ins["instruction"], []).append(ins["value"])
    user = by["USER"][-1].split(":")[0]
    assert user.isdigit() and int(user) != 0 and int(user) == facts["uid"]
    assert by["EXPOSE"] == [str(project.answers.get("port", facts["default_port"]))]
    healthcheck = by["HEALTHCHECK"][-1]
    assert "CMD" in healthcheck
    command = by.get("CMD", by.get("ENTRYPOINT"))[-1]
    assert isinstance(json.loads(command), list), "exec form keeps the process PID 1 and signal-ready"


def copy_sources(structure):
    """Paths in the build context that COPY/ADD instructions read (not --from other stages)."""
    for ins in structure:
        if ins["instruction"] not in {"COPY", "ADD"}:
            continue
        words = shlex.split(ins["value"])
        if any(w.startswith("--from") for w in words):
            continue
        args = [w for w in words if not w.startswith("--")]
        if args and args[0].startswith("["):
            args = json.loads(ins["value"][ins["value"].index("["):])
        yield from args[:-1]


def test_dockerignore_lets_in_what_is_copied_and_keeps_out_the_rest(project):
    patterns = [line.strip() for line in project.text(".dockerignore").splitlines()
                if line.strip() and not line.startswith("#")]
    matcher = PatternMatcher(patterns)
    sources = list(copy_sources(parse(project)))
    assert sources, "the Dockerfile copies something from the context"
    for src in sources:
        src = src.rstrip("/").removeprefix("./")
        if src in {"", "."}:
            continue
        if any(c in src for c in "*?["):
            # an optional file (COPY go.mod go.sum* ./ before the first dependency): the file it
            # stands for must get in once it exists
            src = src.rstrip("*?")
            assert not matcher.matches(src), f"COPY {src}*: {src} would be excluded by .dockerignore"
            continue
        target = project.path / src
        assert target.exists(), f"COPY {src}: not in the render"
        assert not matcher.matches(src), f"COPY {src} is excluded by .dockerignore"
        if target.is_dir():
            inside = [p.relative_to(project.path).as_posix() for p in target.rglob("*") if p.is_file()]
            assert any(not matcher.matches(p) for p in inside), f"COPY {src}: every file is ignored"
    for path in MUST_EXCLUDE:
        assert matcher.matches(path), f".dockerignore lets {path} into the build context"


@pytest.mark.parametrize("language", sorted(FACTS))
def test_dependency_files_are_copied_before_sources(render, language):
    """Layer caching: the lockfile layer comes before the source layer."""
    project = render(language=language)
    structure = parse(project)
    copies = [(i, list(copy_sources([ins]))) for i, ins in enumerate(structure)]
    first_dep = min(i for i, srcs in copies for s in srcs if s in FACTS[language]["dependency_files"])
    first_src = min(i for i, srcs in copies for s in srcs
                    if s.rstrip("/") in FACTS[language]["source_dirs"] or s == ".")
    assert first_dep < first_src


def test_free_text_lands_as_typed_in_the_label_and_the_markdown(render):
    """A description with a trailing backslash, quotes, $VAR and Markdown/HTML: hadolint is clean,
    the LABEL holds the text as typed, and the README shows it literally."""
    text = 'Costs $HOME & "more" <b>bold</b> [x](javascript:y) # not a heading \\ C:\\temp'
    project = render(language="go", description=text, project_name="Pay_ments <i>")
    run(["hadolint", "--no-color", "Dockerfile"], cwd=project.path)
    (quoted,) = re.findall(r'org\.opencontainers\.image\.description=("(?:[^"\\]|\\.)*")',
                           project.text("Dockerfile"))
    # Docker's lexer reads \\, \" and \$ inside double quotes as POSIX shells do: bash decodes it
    # (the test text has no backtick, the one character whose meaning differs)
    assert run(["bash", "-c", f"printf %s {quoted}"]).stdout == text
    html = markdown.markdown(project.text("README.md"))
    first = html.split("\n", 2)
    assert first[0] == "<h1>Pay_ments &lt;i&gt;</h1>", first[0]
    assert first[1] == ('<p>Costs $HOME &amp; "more" &lt;b&gt;bold&lt;/b&gt; [x](javascript:y) # not a heading '
                        '\\ C:\\temp</p>'), first[1]
