"""The template's own documentation: builds strictly, and the questions page matches copier.yml."""

from __future__ import annotations

import re

import yaml

from extensions.facts import FACTS
from helpers import ROOT, run


def questions():
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    return {key: value for key, value in config.items() if not key.startswith("_")}


def test_mkdocs_builds_strictly(tmp_path):
    run(["mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT)


def test_questions_page_lists_every_question_and_nothing_else():
    page = (ROOT / "docs" / "questions.md").read_text()
    documented = re.findall(r"^\| `([a-z_]+)` \|", page, re.M)
    assert sorted(documented) == sorted(questions()), "docs/questions.md and copier.yml differ"
    assert len(documented) == len(set(documented))


def test_questions_page_lists_every_choice_and_default():
    page = (ROOT / "docs" / "questions.md").read_text()
    rows = {m[0]: m[1] for m in re.findall(r"^\| `([a-z_]+)` \|(.*)$", page, re.M)}
    for key, question in questions().items():
        choices = question.get("choices")
        if isinstance(choices, dict):
            for value in choices.values():
                assert f"`{value}`" in page, f"choice {key}={value} undocumented"
        default = question.get("default")
        if isinstance(default, bool):
            default = str(default).lower()
        if isinstance(default, (str, int)) and "{" not in str(default):
            assert f"`{default}`" in rows[key], f"default of {key} undocumented"
    for language, row in FACTS.items():
        assert f"`{row['default_port']}` ({language})" in rows["port"]
        for version in row["versions"]:
            assert f"`{version}`" in rows[row["version_question"]]
