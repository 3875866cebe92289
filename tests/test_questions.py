"""Layer 1: the questions. Every rule refuses bad input with the question named and writes nothing."""

from __future__ import annotations

import re
import subprocess
import sys

import copier
import pytest
import yaml

from helpers import LANGUAGES, ROOT

sys.path.insert(0, str(ROOT))
from extensions.facts import FACTS  # noqa: E402
from extensions.validators import DERIVED_NAME_SUFFIXES, SLUG_MAX, slug_error, slugify  # noqa: E402


def copy(dst, **data):
    return copier.run_copy(str(ROOT), str(dst), data=data, defaults=True, unsafe=True, quiet=True,
                           vcs_ref="HEAD")


BAD_ANSWERS = [
    # (answers, question named, words of the rule)
    ({"project_slug": "My-Service"}, "project_slug", "DNS-1035 label"),
    ({"project_slug": "my_service"}, "project_slug", "DNS-1035 label"),
    ({"project_slug": "-my-service"}, "project_slug", "starting with a letter"),
    ({"project_slug": "my-service-"}, "project_slug", "ending with a letter or digit"),
    # a Service name must start with a letter (DNS-1035): the API server refuses "2fa"
    ({"project_slug": "2fa-service"}, "project_slug", "starting with a letter"),
    # <slug>-production, the longest derived name, must fit in a 63-character namespace name
    ({"project_slug": "a" * 53}, "project_slug", "at most 52 characters"),
    ({"project_slug": "a" * 53}, "project_slug", "<slug>-production"),
    # YAML reads y/yes/on/... as booleans: kustomize refuses such a label value (seen on the test cluster)
    ({"project_slug": "y"}, "project_slug", "YAML reads 'y' as a boolean"),
    ({"project_slug": "off"}, "project_slug", "YAML reads 'off' as a boolean"),
    ({"project_name": "   "}, "project_name", "must not be empty"),
    ({"project_name": "n" * 81}, "project_name", "at most 80 characters, got 81"),
    ({"description": "d" * 201}, "description", "at most 200 characters, got 201"),
    ({"description": "ends in a backslash \\"}, "description", "must not end with a backslash"),
    ({"github_owner": "bad owner"}, "github_owner", "GitHub user or organisation"),
    ({"owner": "team payments"}, "owner", "must be a Backstage entity reference"),
    ({"owner": "component:default/x"}, "owner", "may name the kind group or user only"),
    ({"owner": "a" * 64}, "owner", "each part at most 63 characters"),
    ({"system": "payments--core"}, "system", "must be a Backstage entity reference"),
    ({"port": 80}, "port", "between 1024 and 65535"),
    ({"port": 1023}, "port", "between 1024 and 65535"),
    ({"port": 65536}, "port", "between 1024 and 65535"),
    ({"language": "rust"}, "language", "not in"),
    ({"deployment_strategy": "big-bang"}, "deployment_strategy", "not in"),
    ({"language": "node", "node_version": "12"}, "node_version", "not in"),
    ({"language": "go", "go_version": "1.0"}, "go_version", "not in"),
    ({"language": "django", "python_version": "2.7"}, "python_version", "not in"),
    ({"deployment_strategy": "canary", "canary_steps": "10,50,25,100"}, "canary_steps",
     "strictly increasing"),
    ({"deployment_strategy": "canary", "canary_steps": "10,10,100"}, "canary_steps",
     "strictly increasing"),
    ({"deployment_strategy": "canary", "canary_steps": "10,25,50"}, "canary_steps",
     "last step must be 100"),
    ({"deployment_strategy": "canary", "canary_steps": "0,50,100"}, "canary_steps",
     "between 1 and 100"),
    ({"deployment_strategy": "canary", "canary_steps": "10,25,150"}, "canary_steps",
     "between 1 and 100"),
    ({"deployment_strategy": "canary", "canary_steps": "ten,100"}, "canary_steps",
     "comma-separated whole percentages"),
]


@pytest.mark.parametrize(("answers", "question", "rule"), BAD_ANSWERS,
                         ids=[f"{q}={list(a.values())[-1]!s:.20}" for a, q, _ in BAD_ANSWERS])
def test_bad_answer_is_refused_naming_question_and_rule(tmp_path, answers, question, rule):
    dst = tmp_path / "out"
    with pytest.raises(ValueError) as excinfo:
        copy(dst, **answers)
    message = str(excinfo.value)
    assert f"'{question}'" in message, message
    assert rule in message, message
    assert not dst.exists(), "a refused answer must write nothing"


def test_cli_refusal_is_one_clear_message_and_writes_nothing(tmp_path):
    dst = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "copier", "copy", "--trust", "--defaults",
                           "--data", "port=80", str(ROOT), str(dst)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Validation error for question 'port'" in proc.stderr
    assert "between 1024 and 65535" in proc.stderr
    assert not dst.exists()


@pytest.mark.parametrize("language", LANGUAGES)
def test_port_and_version_default_by_language(render, language):
    project = render(language=language)
    answers = project.recorded_answers
    facts = FACTS[language]
    assert answers["port"] == facts["default_port"]
    # only the chosen language's runtime version is asked and recorded, defaulting to the newest
    version_keys = {f["version_question"] for f in FACTS.values()}
    assert answers[facts["version_question"]] == facts["versions"][0]
    assert not (version_keys - {facts["version_question"]}) & answers.keys()


def test_slug_derives_from_name(render):
    answers = render(language="go", project_name="Payments API (EU)").recorded_answers
    assert answers["project_slug"] == "payments-api-eu"


@pytest.mark.parametrize(("name", "slug"), [
    ("Payments API (EU)", "payments-api-eu"),
    ("123 Service", "service"),  # a Service name cannot start with a digit
    ("2FA gateway", "fa-gateway"),
    ("1984", "service"),
    ("--- !!! ---", "service"),
    ("Ünïcødé 服务 🚀", "n-c-d"),
    ("An " + "extremely long service name " * 5, None),
    ("x" * 200, "x" * SLUG_MAX),
    ("Yes", "yes-service"),
    ("N", "n-service"),
])
def test_slugify_always_gives_a_valid_slug(name, slug):
    result = slugify(name)
    assert slug_error(result) == "", result
    assert len(result) <= SLUG_MAX
    if slug is not None:
        assert result == slug


def test_slug_default_of_a_name_starting_with_digits_is_valid(render):
    assert render(language="go", project_name="123 Service").recorded_answers["project_slug"] == "service"


def test_slug_max_leaves_room_for_every_derived_name():
    """SLUG_MAX comes from the longest `<slug>-<suffix>` name the template writes: every suffix the
    manifests and scripts append to the slug is in DERIVED_NAME_SUFFIXES (with the last preview
    namespace, <slug>-preview-99), and the slug plus each fits a 63-character name."""
    derived = re.compile(r"""(?:\{\{-? *project_slug *-?\}\}|project_slug *~ *['"]|\$\{?SLUG\}?)-([a-z][a-z0-9]*)\b""")
    found = set()
    for folder in ("template", "includes"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                found |= {f"-{m}" for m in derived.findall(path.read_text(errors="replace"))}
    assert "-production" in found, "the pattern no longer finds the derived names"
    assert found <= set(DERIVED_NAME_SUFFIXES), found - set(DERIVED_NAME_SUFFIXES)
    assert SLUG_MAX == 63 - max(map(len, DERIVED_NAME_SUFFIXES)) == 52
    assert all(len("a" * SLUG_MAX + suffix) <= 63 for suffix in DERIVED_NAME_SUFFIXES)
    # the question's help and its docs state the same number
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert f"at most {SLUG_MAX} characters" in config["project_slug"]["help"]
    assert f"at most {SLUG_MAX} characters" in (ROOT / "docs" / "questions.md").read_text()


def test_canary_steps_asked_only_for_canary(render):
    assert "canary_steps" not in render(language="go").recorded_answers
    canary = render(language="go", deployment_strategy="canary").recorded_answers
    assert canary["canary_steps"] == "10,25,50,100"


def test_edge_values_are_accepted(render):
    project = render(language="go", port=65535, project_slug="a" * SLUG_MAX,
                     deployment_strategy="canary", canary_steps="100")
    assert project.recorded_answers["port"] == 65535
    assert project.recorded_answers["project_slug"] == "a" * 52


def test_facts_table_rows_have_the_same_keys():
    keys = {language: set(row) for language, row in FACTS.items()}
    first = keys["node"]
    assert all(k == first for k in keys.values()), keys
    assert set(FACTS) == set(LANGUAGES)


def test_language_choices_match_facts_table():
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert sorted(config["language"]["choices"].values()) == sorted(FACTS)


def test_message_after_copy_gives_the_next_three_commands(tmp_path):
    dst = tmp_path / "svc"
    proc = subprocess.run([sys.executable, "-m", "copier", "copy", "--trust", "--defaults",
                           "--data", "language=go", str(ROOT), str(dst)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert f"cd {dst} && git init" in output
    assert "make setup" in output and "make check" in output
    assert "port 8080" in output
