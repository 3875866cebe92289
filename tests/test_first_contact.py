"""First contact with a rendered repository: the README names the tools the language needs, with
versions, and `make setup` checks them first (scripts/check-tools.sh), so that a missing or
too-old tool is one line saying what is needed and where to get it, and nothing is installed.

The versions come from the facts table (FACTS[language]["tools"]); the tests below keep them in
step with the files that state the same minimum (package.json's engines, pyproject.toml's
requires-python, go.mod's go line, the image's uv). That `make setup` passes with the real tools
is tests/test_<language>_service.py's (their fixtures run it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import LANGUAGES, ROOT, Project, run, tool_env

sys.path.insert(0, str(ROOT))
from extensions.facts import FACTS

SCRIPT = ROOT / "template" / "scripts" / "check-tools.sh"
# what `make setup` installs into the repository, per language: absent after a refused setup
INSTALLED = {"node": "node_modules", "django": ".venv", "go": None}
# the programs each language's check runs (with what a missing one leaves out of PATH)
PROGRAMS = {"node": ("node", "npm", "npx", "corepack"), "go": ("go", "gofmt"), "django": ("uv", "uvx")}


def tools(project: Project) -> list[dict[str, str]]:
    """The rendered table: FACTS' row as the context hook formats it for this render."""
    facts = FACTS[project.language]
    version = project.recorded_answers[facts["version_question"]]
    line = ".".join(version.split(".")[:2])
    return [{key: text.format(version=version, line=line) for key, text in tool.items()}
            for tool in facts["tools"]]


def make(project: Project, *targets: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
    variables = tool_env(GOTOOLCHAIN="local", UV_PYTHON_DOWNLOADS="never", **env)
    if path is not None:
        variables["PATH"] = path
    return subprocess.run(["make", *targets], cwd=project.path, env=variables, capture_output=True,
                          text=True, timeout=300, check=False)


def one_line_refusal(proc: subprocess.CompletedProcess) -> str:
    """The script's line: make stopped, and besides make's own 'make: *** ... Error 1' the
    output is that one line."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    output = (proc.stdout + proc.stderr).splitlines()
    lines = [line for line in output if not re.match(r"make(\[\d+\])?: ", line)]
    assert len(lines) == 1, lines
    return lines[0]


def path_without(folder: Path, names: tuple[str, ...]) -> str:
    """A PATH of one folder holding every program of the test environment's PATH but ``names``."""
    folder.mkdir()
    for directory in tool_env()["PATH"].split(os.pathsep):
        if not Path(directory).is_dir():
            continue
        for program in sorted(Path(directory).iterdir()):
            link = folder / program.name
            if program.name in names or link.is_symlink() or not os.access(program, os.X_OK):
                continue
            if program.is_file():
                link.symlink_to(program)
    return str(folder)


def fake(folder: Path, name: str, script: str) -> None:
    """A stand-in program ``name`` (a shell script): how an old install answers, without one."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


# ------------------------------------------------------------------------------------------------
# The README and the Makefile say the same as the facts table, which says the same as the files
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_readme_lists_the_tools_with_versions_and_make_setup_checks_them_first(render, language):
    project = render(language=language)
    readme = project.text("README.md")
    prerequisites = readme.split("## Prerequisites\n", 1)[1].split("\n## ", 1)[0]
    rows = tools(project)
    assert rows, "every language needs some tool"
    for tool in rows:
        assert f"| {tool['name']} | {tool['min']} or newer | {tool['how']} |" in prerequisites
    assert "make setup" in prerequisites and "make check-tools" in prerequisites
    makefile = project.text("Makefile")
    assert re.search(r"^setup: check-tools ##", makefile, re.MULTILINE)
    recipe = makefile.split("\ncheck-tools:", 1)[1].split("\n\n", 1)[0]
    for tool in rows:
        assert f"'{tool['name']}' '{tool['min']}'" in recipe
    # the README's names and the check's are the same list, in the same order
    assert re.findall(r"^\| (\S[^|]*?) \| [0-9.]+ or newer \|", prerequisites, re.MULTILINE) == [
        tool["name"] for tool in rows]


def test_the_facts_table_has_no_quote_that_would_break_the_makefile():
    for row in FACTS.values():
        for tool in row["tools"]:
            assert set(tool) == {"name", "min", "command", "how"}
            assert not any("'" in text for text in tool.values()), tool


def test_node_minimum_is_package_json_engines(render):
    project = render(language="node")
    engines = json.loads(project.text("package.json"))["engines"]["node"]
    assert engines == f">={tools(project)[0]['min']}"


def test_python_minimum_is_requires_python_and_uv_minimum_is_the_image_uv_line(render):
    project = render(language="django")
    uv, python = tools(project)
    pyproject = tomllib.loads(project.text("pyproject.toml"))
    assert pyproject["project"]["requires-python"] == f">={python['min']}"
    image_uv = re.search(r"^FROM ghcr\.io/astral-sh/uv:([0-9.]+)", project.text("Dockerfile"), re.MULTILINE)
    assert image_uv and image_uv[1].startswith(f"{uv['min']}."), image_uv


@pytest.mark.parametrize("version", FACTS["go"]["versions"])
def test_go_minimum_is_the_go_line_of_go_mod(render, version):
    project = render(language="go", go_version=version)
    go_line = re.search(r"^go (\S+)$", project.text("go.mod"), re.MULTILINE)[1]
    assert tools(project)[0]["min"] == go_line
    assert f"'Go' '{go_line}'" in project.text("Makefile")


# ------------------------------------------------------------------------------------------------
# The script alone: its version parser and its lines
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("prints", "minimum", "ok"), [
    ("v20.19.0", "20.19", True),
    ("v20.18.3", "20.19", False),
    ("v22.1.0", "20.19", True),
    ("10.8.2", "10.8", True),
    ("9.9.9", "10.8", False),  # numbers, not text: 9 < 10
    ("go1.27.0", "1.27.0", True),
    ("go1.26.8", "1.27.0", False),
    ("go1.27rc1", "1.27.0", True),  # a release candidate of the line counts as the line
    ("uv 0.13.9 (d4e5f6a 2026-10-01)", "0.13", True),  # the date is not the version
    ("uv 0.9.30", "0.13", False),
    ("Python 3.11.0", "3.11", True),
    ("Python 3.10.14", "3.11", False),
])
def test_version_parser(tmp_path, prints, minimum, ok):
    fake(tmp_path, "tool", f"echo '{prints}'\n")
    proc = subprocess.run(["sh", str(SCRIPT), "Tool", minimum, "tool --version", "get it here"],
                          env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"},
                          capture_output=True, text=True, check=False)
    assert (proc.returncode == 0) == ok, proc.stderr
    if ok:
        assert proc.stdout == proc.stderr == ""
    else:
        found = re.search(r"[0-9]+(\.[0-9]+)+", prints)[0]
        assert proc.stderr == f"make setup needs Tool {minimum} or newer, found {found} (tool): get it here\n"


def test_a_tool_that_tells_no_version_is_named(tmp_path):
    fake(tmp_path, "tool", "echo 'error: cannot run' >&2\nexit 3\n")
    proc = subprocess.run(["sh", str(SCRIPT), "Tool", "1.0", "tool --version", "get it here"],
                          env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr == ("make setup needs Tool 1.0 or newer, and 'tool --version' told no version "
                           "(error: cannot run): get it here\n")


def test_script_is_shellcheck_clean_and_no_jinja():
    run(["shellcheck", str(SCRIPT)])
    text = SCRIPT.read_text()
    assert not any(mark in text for mark in ("{{", "{%", "{#"))
    assert os.access(SCRIPT, os.X_OK)


# ------------------------------------------------------------------------------------------------
# `make setup` in a fresh render, as a new user meets it
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_make_setup_names_a_missing_tool_in_one_line_and_installs_nothing(private_render, tmp_path, language):
    project = private_render(language=language)
    first = tools(project)[0]
    program = first["command"].split()[0]
    proc = make(project, "setup", path=path_without(tmp_path / "bin", PROGRAMS[language]))
    line = one_line_refusal(proc)
    assert line == (f"make setup needs {first['name']} {first['min']} or newer, and {program} is not on "
                    f"PATH: {first['how']}")
    if INSTALLED[language]:
        assert not (project.path / INSTALLED[language]).exists()


# Stand-ins for old installs: each prints what that old release prints, and nothing else runs.
OLD = {
    "node": ("node", "echo v18.20.4\n", "Node.js", "18.20.4"),
    "go": ("go", 'if [ "$1 $2" = "env GOVERSION" ]; then echo go1.22.12; else exit 1; fi\n', "Go", "1.22.12"),
    "django": ("uv", 'echo "uv 0.4.30 (61ed2a236 2024-11-04)"\n', "uv", "0.4.30"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_make_setup_names_a_too_old_tool_in_one_line(private_render, tmp_path, language):
    project = private_render(language=language)
    program, script, name, version = OLD[language]
    fake(tmp_path / "old", program, script)
    tool = next(t for t in tools(project) if t["name"] == name)
    proc = make(project, "setup", path=f"{tmp_path / 'old'}{os.pathsep}{tool_env()['PATH']}")
    line = one_line_refusal(proc)
    assert line == (f"make setup needs {name} {tool['min']} or newer, found {version} ({program}): "
                    f"{tool['how']}")
    if INSTALLED[language]:
        assert not (project.path / INSTALLED[language]).exists()


def test_make_setup_names_a_too_old_python_that_uv_would_use(private_render, tmp_path):
    """A stand-in uv that finds a Python 3.10 (a stand-in too): the real uv's version, the old
    Python's line."""
    project = private_render(language="django")
    fake(tmp_path / "old", "python3.10", "echo 'Python 3.10.14'\n")
    fake(tmp_path / "old", "uv", f"""case "$1 $2" in
  "python find") echo {tmp_path / 'old' / 'python3.10'} ;;
  *) echo "uv 0.13.9 (test 2026-01-01)" ;;
esac
""")
    proc = make(project, "setup", path=f"{tmp_path / 'old'}{os.pathsep}{tool_env()['PATH']}")
    python = tools(project)[1]
    assert one_line_refusal(proc) == (f"make setup needs Python {python['min']} or newer, found 3.10.14 "
                                      f"(uv): {python['how']}")
    assert not (project.path / ".venv").exists()


@pytest.mark.parametrize("language", LANGUAGES)
def test_make_check_tools_passes_with_the_test_environment_tools(render, language):
    proc = make(render(language=language), "check-tools")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == proc.stderr == ""
