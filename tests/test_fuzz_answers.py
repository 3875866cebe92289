"""Fuzzing the questions: any answer set is refused cleanly or renders a project that passes every check.

The property, for answer sets that hypothesis generates (valid and invalid, unicode, control
characters, YAML/Jinja/shell metacharacters, edge lengths, ports, canary step strings):

* either copier refuses it with a ValueError that names a question we answered, and writes nothing;
* or the render succeeds and passes the static checks of this test suite: every test function in
  tests/test_*.py whose only argument is ``project`` (render hygiene, yamllint, hadolint, the
  Dockerfile rules, kustomize, shellcheck, actionlint, secrets, ... as they are added) is called on
  the fuzzed render, and checkov runs once over all fuzzed renders at the end.

Any other exception (a traceback from template code, a TypeError from a filter) fails the test.

Budget (the whole suite must stay under 20 minutes on 2 cores): hypothesis runs derandomized (a
fixed seed derived from the test, no example database), so CI sees the same examples every run.
The cheap path (refusal or render + hygiene, ~0.2 s an example) runs FUZZ_EXAMPLES examples
(default 300); the full path (render + every static check, a few seconds an example) runs
FUZZ_RENDER_EXAMPLES (default 20). Raise both locally to search harder, e.g.
``FUZZ_EXAMPLES=3000 FUZZ_RENDER_EXAMPLES=200 pytest tests/test_fuzz_answers.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import copier
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from extensions.facts import FACTS
from extensions.validators import SLUG_MAX
from helpers import LANGUAGES, ROOT, STRATEGIES, Project
from test_policy import checkov, scan_copy

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ_RENDER_EXAMPLES = int(os.environ.get("FUZZ_RENDER_EXAMPLES", "20"))
# copier's wordings: "Validation error for question 'port'", "Invalid choice for 'language'", ...
QUESTION_NAMED = re.compile(r"""(?:question|for) ['"]([a-z_]+)['"]""", re.IGNORECASE)
SLOW_MARKS = {"toolchain", "reliability"}
YAML_QUESTIONS = {
    key
    for key, question in yaml.safe_load((ROOT / "copier.yml").read_text()).items()
    if isinstance(question, dict) and question.get("type") == "yaml"
}

CI_SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------------------------
# Answer generators
# --------------------------------------------------------------------------------------------
TRICKY = [
    "",
    " ",
    "\t",
    "\n",
    "x",
    "Ünïcødé 服务 🚀",
    "ﬁ ligature",
    "\u200b zero width",
    "rtl \u202e txt",
    "{{ 7 * 7 }}",
    "{% raw %}",
    "{# c #}",
    "${{ secrets.GITHUB_TOKEN }}",
    "$(id)",
    "`id`",
    "'; rm -rf ~",
    '"quoted"',
    "it's",
    "a: b",
    "- item",
    "# comment",
    "key: [1, {a: b}]",
    "null",
    "true",
    "~",
    "no",
    "0x1F",
    "1e3",
    "*alias",
    "&anchor",
    "!!python/object",
    "\\",
    "back\\slash",
    "100%",
    "<script>",
    "a" * 63,
    "a" * 64,
    "a" * SLUG_MAX,
    "a" * (SLUG_MAX + 1),
    "word " * 60,
    "\x00",
    "\x1b[31mred",
    "line1\r\nline2",
]
text = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=80),
    st.builds(lambda a, b: a + b, st.sampled_from(TRICKY), st.text(max_size=20)),
)
# a valid slug: a DNS-1035 label of at most SLUG_MAX characters (extensions/validators.py)
dns_label = st.from_regex(rf"\A[a-z]([a-z0-9-]{{0,{SLUG_MAX - 2}}}[a-z0-9])?\Z")
owner = st.from_regex(r"\A[A-Za-z0-9]{1,12}(-[A-Za-z0-9]{1,8}){0,3}\Z")
increasing_steps = st.sets(st.integers(1, 99), max_size=5).map(
    lambda s: ",".join(map(str, [*sorted(s), 100]))
)
any_steps = st.one_of(
    increasing_steps,
    increasing_steps.map(lambda s: s.replace(",", ", ")),
    st.lists(st.integers(-5, 150), max_size=6).map(lambda s: ",".join(map(str, s))),
    text,
)
ports = st.one_of(st.integers(-5, 70_000), st.sampled_from([0, 1023, 1024, 65535, 65536]), text)
VERSION_KEYS = {facts["version_question"]: facts["versions"] for facts in FACTS.values()}


@st.composite
def any_answers(draw) -> dict[str, Any]:
    """Any mix of answered questions: valid values, invalid values, or unanswered (the default)."""
    options: dict[str, st.SearchStrategy] = {
        "project_name": text,
        "project_slug": st.one_of(dns_label, text),
        "description": text,
        "github_owner": st.one_of(owner, text),
        "owner": st.one_of(owner, text),
        "system": st.one_of(st.just(""), owner, text),
        "language": st.one_of(st.sampled_from(LANGUAGES), text),
        "port": ports,
        "deployment_strategy": st.one_of(st.sampled_from(STRATEGIES), text),
        "canary_steps": any_steps,
        "preview_deploys": st.booleans(),
    }
    for key, versions in VERSION_KEYS.items():
        options[key] = st.one_of(st.sampled_from(versions), text)
    answers = {}
    for key, strategy in options.items():
        if draw(st.booleans()):
            answers[key] = draw(strategy)
    return answers


@st.composite
def valid_answers(draw) -> dict[str, Any]:
    """Answer sets the validators accept, with hostile free text, edge ports and edge lengths."""
    language = draw(st.sampled_from(LANGUAGES))
    strategy = draw(st.sampled_from(STRATEGIES))
    facts = FACTS[language]
    answers: dict[str, Any] = {
        "language": language,
        "deployment_strategy": strategy,
        "project_name": draw(text.filter(str.strip)),
        "description": draw(text),
        "github_owner": draw(owner),
        "owner": draw(st.one_of(owner, owner.map(lambda name: f"group:default/{name}"))),
        "system": draw(st.one_of(st.just(""), owner)),
        "port": draw(
            st.one_of(st.sampled_from([1024, 65535, facts["default_port"]]), st.integers(1024, 65535))
        ),
        facts["version_question"]: draw(st.sampled_from(facts["versions"])),
        "preview_deploys": draw(st.booleans()),
    }
    if draw(st.booleans()):
        answers["project_slug"] = draw(st.one_of(dns_label, st.just("a" * SLUG_MAX), st.just("x")))
    if strategy == "canary":
        answers["canary_steps"] = draw(
            st.one_of(increasing_steps, increasing_steps.map(lambda s: s.replace(",", ", ")), st.just("100"))
        )
    return answers


# --------------------------------------------------------------------------------------------
# The checks: reuse the suite's own static tests instead of copying them
# --------------------------------------------------------------------------------------------
def _marks(obj) -> set[str]:
    marks = getattr(obj, "pytestmark", [])
    return {m.name for m in (marks if isinstance(marks, list) else [marks])}


# The suite's per-render fixtures, by name: what each hands its tests (a Project or its path).
PER_RENDER_FIXTURES: dict[str, Callable[[Project], Any]] = {
    "project": lambda project: project,  # tests/conftest.py: the nine renders
    "gh": lambda project: project,  # tests/test_workflows.py: the renders plus no-preview ones
    "root": lambda project: project.path,  # tests/test_workflows.py: renders' folders (and this repo)
}


def static_checks() -> dict[str, Callable[[Project], None]]:
    """Every test in tests/ that takes one per-render fixture and nothing else, except the slow
    (toolchain, reliability) ones, as a function of a Project."""
    checks = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.stem == Path(__file__).stem:
            continue
        module = importlib.import_module(path.stem)
        if _marks(module) & SLOW_MARKS:
            continue
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            params = list(inspect.signature(fn).parameters)
            if (
                name.startswith("test_")
                and fn.__module__ == module.__name__
                and len(params) == 1
                and params[0] in PER_RENDER_FIXTURES
                and not _marks(fn) & SLOW_MARKS
            ):
                adapt = PER_RENDER_FIXTURES[params[0]]
                checks[f"{path.stem}::{name}"] = lambda project, fn=fn, adapt=adapt: fn(adapt(project))
    return checks


def snapshot_of_head(dest: Path) -> Path:
    """HEAD's files without git: copier then reads them in place instead of cloning (~5x faster)."""
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def copy(dst: Path, answers: dict[str, Any], src: Path | None = None) -> None:
    """Render like the suite does (from ROOT at HEAD), or from a snapshot of HEAD."""
    copier.run_copy(
        str(src or ROOT),
        str(dst),
        data=answers,
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref=None if src else "HEAD",
    )


def refused_or_rendered(dst: Path, answers: dict[str, Any], src: Path | None = None) -> bool:
    """True when rendered; False when refused properly. Fails on anything else."""
    try:
        copy(dst, answers, src)
    except ValueError as error:  # copier's validation errors are ValueErrors naming the question
        named = QUESTION_NAMED.findall(str(error))
        if not named and isinstance(error.__context__, yaml.YAMLError) and set(answers) & YAML_QUESTIONS:
            # Known limitation of copier: a `type: yaml` answer that is not YAML at all (a NUL, an
            # unclosed quote) fails copier's own parse before any validator runs, with the parser's
            # message and no question named. Still a refusal that writes nothing.
            named = sorted(set(answers) & YAML_QUESTIONS)
        assert named, f"refusal names no question: {error!r} for {answers!r}"
        assert set(named) <= set(answers), f"refusal names {named}, not an answered question: {answers!r}"
        assert not dst.exists(), f"a refused answer set wrote {dst}: {answers!r}"
        return False
    return True


def rendered_project(dst: Path, answers: dict[str, Any]) -> Project:
    """The render as the suite's fixtures hand it to tests: every answer, derived ones included
    (pytest-copie's result.answers), then the ones given."""
    recorded = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    return Project(dst, {**{k: v for k, v in recorded.items() if not k.startswith("_")}, **answers})


def hygiene(project: Project) -> None:
    """The cheap checks: no template leftovers or empty files; every YAML/JSON file parses."""
    static_checks()["test_render::test_no_template_leftovers"](project)
    for rel in project.yaml_files():
        list(yaml.safe_load_all(project.text(str(rel))))


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------
def test_static_checks_are_collected():
    """Guard against silently fuzzing with nothing: the suite's static checks are all found."""
    checks = static_checks()
    assert {
        "test_render::test_no_template_leftovers",
        "test_static::test_yamllint_every_yaml_file",
        "test_dockerfile::test_hadolint_reports_nothing",
        "test_workflows::test_linters_report_nothing",
        "test_policy::test_no_secret_looking_value_in_any_render",
    } <= set(checks), sorted(checks)


def test_any_answer_set_is_refused_cleanly_or_renders_clean(tmp_path):
    outcomes = {"refused": 0, "rendered": 0}
    src = snapshot_of_head(tmp_path / "template")

    @settings(max_examples=FUZZ_EXAMPLES, **CI_SETTINGS)
    @given(answers=any_answers())
    def check(answers):
        with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
            dst = Path(tmp) / "out"
            if refused_or_rendered(dst, answers, src):
                outcomes["rendered"] += 1
                hygiene(rendered_project(dst, answers))
            else:
                outcomes["refused"] += 1

    check()
    # both paths were exercised, so the property says something about each
    assert outcomes["refused"] and outcomes["rendered"], outcomes


def test_valid_answer_sets_render_projects_that_pass_every_static_check(tmp_path):
    checks = static_checks()
    rendered: list[tuple[Path, dict]] = []
    counter = iter(range(10**9))

    # no shrinking here: each example costs seconds; the failing answers are printed as found
    @settings(
        max_examples=FUZZ_RENDER_EXAMPLES,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        report_multiple_bugs=False,
        **CI_SETTINGS,
    )
    @given(answers=valid_answers())
    def check(answers):
        dst = tmp_path / f"r{next(counter)}"
        if not refused_or_rendered(dst, answers):
            return
        project = rendered_project(dst, answers)
        for name, fn in checks.items():
            try:
                fn(project)
            except AssertionError as error:
                raise AssertionError(f"{name} failed for {answers!r}:\n{error}") from error
        rendered.append((dst, answers))

    check()
    assert rendered
    # one checkov run over every fuzzed render (starting checkov costs ~8 s), each as the policy
    # suite scans it: Kubernetes manifests as deploy.sh builds them
    scan = tmp_path / "checkov"
    for dst, answers in rendered:
        scan_copy(rendered_project(dst, answers), scan / dst.name)
    failed = [
        (check["file_path"], check["check_id"], check["check_name"])
        for report in checkov(scan)
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    by_dir = {dst.name: answers for dst, answers in rendered}
    assert not failed, "\n".join(
        f"{path} {cid} {name} answers={by_dir.get(path.split('/')[1])!r}" for path, cid, name in failed
    )
