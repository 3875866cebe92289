"""The template's layout: real names under template/, one table of the paths some answers leave out
(extensions/facts.py), one computed `_exclude` (copier.yml, ADR 0089).
"""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import copier
import pytest
import yaml
from helpers import LANGUAGES, MATRIX, ROOT

from extensions.context import TEMPLATES_SUFFIX, excluded_paths
from extensions.facts import DATABASE_PATHS, FACTS, PREVIEW_PATHS, STRATEGIES

TEMPLATE = ROOT / "template"
ANSWERS_FILE_NAME = "{{_copier_conf.answers_file}}.jinja"  # Copier's own convention, not a condition


def exists(path: str) -> bool:
    return (TEMPLATE / path).exists() or (TEMPLATE / f"{path}{TEMPLATES_SUFFIX}").exists()


def test_no_name_under_template_carries_a_condition():
    templated = [p.relative_to(TEMPLATE).as_posix() for p in TEMPLATE.rglob("*")
                 if ("{%" in p.name or "{{" in p.name) and p.name != ANSWERS_FILE_NAME]
    assert not templated, templated


def test_every_listed_path_exists_and_belongs_to_one_owner():
    owners: dict[str, list[str]] = {}
    for language, row in FACTS.items():
        for path in row["paths"]:
            owners.setdefault(path, []).append(language)
    for strategy, row in STRATEGIES.items():
        for path in row["paths"]:
            owners.setdefault(path, []).append(strategy)
    for path in DATABASE_PATHS + PREVIEW_PATHS:
        owners.setdefault(path, []).append("condition")
    assert all(exists(path) for path in owners), [path for path in owners if not exists(path)]
    assert all(len(who) == 1 for who in owners.values()), {p: w for p, w in owners.items() if len(w) > 1}


def test_a_languages_top_level_entries_are_listed_in_its_row():
    """Each language's source dirs and dependency files are in its `paths`: a new file of the
    language at the top level that is not listed would reach the other languages' renders."""
    for language, row in FACTS.items():
        top = {path.split("/")[0] for path in [*row["source_dirs"], *row["dependency_files"]]}
        assert top <= set(row["paths"]), (language, top - set(row["paths"]))


def test_exclude_is_the_one_computed_entry():
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert config["_exclude"] == ["{{ excluded_paths(language, deployment_strategy, preview_deploys) | join('\n') }}"]


@pytest.mark.parametrize(("language", "strategy"), MATRIX)
def test_each_render_keeps_its_own_paths_and_leaves_the_others_out(render, language, strategy):
    project = render(language=language, deployment_strategy=strategy)
    left_out = {pattern.lstrip("/") for pattern in excluded_paths(language, strategy, True)}
    for path in [*FACTS[language]["paths"], *STRATEGIES[strategy]["paths"], *PREVIEW_PATHS]:
        assert (project.path / path).exists(), path
        assert path not in left_out
    for path in left_out:
        assert not (project.path / path).exists(), path
    assert (project.path / DATABASE_PATHS[0]).exists() == FACTS[language]["has_database"]


# ------------------------------------------------------------------------------------------------
# The move to real names (ADR 0089) changed no render
# ------------------------------------------------------------------------------------------------
MOVE_SUBJECT = "Real names in template/"
ANSWER_SETS = [(language, strategy, True) for language, strategy in MATRIX] + [
    (language, "rolling", False) for language in LANGUAGES]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True, check=True).stdout.strip()


def move_commits() -> tuple[str, str]:
    moved = git("log", "--format=%H", "--fixed-strings", f"--grep={MOVE_SUBJECT}", "-1", "HEAD")
    assert moved, f"no commit '{MOVE_SUBJECT}...' in this clone's history (a shallow clone?)"
    return git("rev-parse", f"{moved}^"), moved


def render_at(ref: str, dst: Path, language: str, strategy: str, preview: bool) -> Path:
    copier.run_copy(str(ROOT), dst, vcs_ref=ref, defaults=True, unsafe=True, quiet=True,
                    data={"language": language, "deployment_strategy": strategy, "preview_deploys": preview})
    # The two commits differ by name only where a render records its template commit.
    for name, key in ((".copier-answers.yml", "_commit:"), ("catalog-info.yaml", "template-release:")):
        path = dst / name
        if path.exists():
            path.write_text("".join(line for line in path.read_text().splitlines(keepends=True) if key not in line))
    return dst


def differences(left: Path, right: Path) -> list[str]:
    found: list[str] = []

    def walk(cmp: filecmp.dircmp, prefix: str) -> None:
        found.extend(f"only before: {prefix}{n}" for n in cmp.left_only)
        found.extend(f"only after: {prefix}{n}" for n in cmp.right_only)
        found.extend(f"differs: {prefix}{n}" for n in cmp.diff_files + cmp.funny_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=[".git"]), "")
    return found


@pytest.mark.parametrize(("language", "strategy", "preview"), ANSWER_SETS)
def test_the_move_to_real_names_changed_no_render(tmp_path, language, strategy, preview):
    before, after = move_commits()
    old = render_at(before, tmp_path / "before", language, strategy, preview)
    new = render_at(after, tmp_path / "after", language, strategy, preview)
    filecmp.clear_cache()
    assert not differences(old, new)


def test_every_partial_is_a_macro():
    """One partial idiom (issue 16): shared text lives in macros with explicit arguments, imported
    by the file that calls them; no include, no `with` block feeding an include its variables."""
    import jinja2
    from jinja2 import nodes

    env = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
    found = []
    for root in (TEMPLATE, ROOT / "includes"):
        for path in root.rglob("*"):
            if path.is_dir() or not (path.suffix == TEMPLATES_SUFFIX or root.name == "includes"):
                continue
            if path.suffix in {".json", ".lock"}:  # the plain lockfiles lockfile() reads
                continue
            tree = env.parse(path.read_text())
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {type(node).__name__}"
                      for node in tree.find_all((nodes.Include, nodes.With))]
    assert not found, found
