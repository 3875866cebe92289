"""Layer 2: every language x strategy renders clean, with its answers recorded."""

from __future__ import annotations

import re

from helpers import ROOT, run

JINJA_LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#")


def test_no_template_leftovers(project):
    for rel in project.files():
        assert rel.suffix != ".jinja", f"{rel} kept its .jinja suffix"
        text = (project.path / rel).read_text(errors="replace")
        assert text.strip(), f"{rel} is empty"
        match = JINJA_LEFTOVER.search(text)
        assert match is None, f"{rel} has leftover Jinja near {text[match.start():match.start() + 60]!r}"


def test_answers_recorded(project):
    answers = project.recorded_answers
    assert answers["_src_path"] == str(ROOT), "an absolute source path keeps `copier update` working"
    assert answers["_commit"]
    for key, value in project.answers.items():
        if key == "port":
            # copier holds the answer as typed (the question is `type: str`, copier.yml says why);
            # the context hook records it as the integer
            assert answers[key] == int(value) and isinstance(answers[key], int)
            continue
        assert answers[key] == value


def test_every_uniform_make_target_exists(project):
    targets = ["setup", "lint", "typecheck", "test", "build", "run", "check", "image"]
    run(["make", "-n", *targets], cwd=project.path)
    help_text = run(["make", "help"], cwd=project.path).stdout
    for target in targets:
        assert re.search(rf"^\s+{target}\s+\S", help_text, re.M), f"make help lacks {target}"


def test_gitignore_keeps_secrets_out(project):
    ignored = project.text(".gitignore").splitlines()
    assert ".env" in ignored and "!.env.example" in ignored
