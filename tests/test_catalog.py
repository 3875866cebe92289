"""catalog-info.yaml: every render's Backstage catalog entry passes Backstage's own validation.

tests/backstage/validate.mjs runs @backstage/catalog-model (pinned in tests/backstage/package.json,
installed by scripts/bootstrap.sh): the entity policies the catalog applies before it accepts an
entity, then the Component kind's validator. `project` is one of the nine renders; the fuzz suite
(tests/test_fuzz_answers.py) calls the same check on every fuzzed render.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

VALIDATOR = ROOT / "tests" / "backstage" / "validate.mjs"


def backstage(*files: Path) -> list[dict]:
    """One result per entity: {file, ok, kind, error}, from Backstage's catalog-model."""
    proc = subprocess.run(["node", str(VALIDATOR), *map(str, files)], text=True, capture_output=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, f"validate.mjs failed ({proc.returncode}): {proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_catalog_entry_passes_backstage_validation(project):
    entry = project.path / "catalog-info.yaml"
    (result,) = backstage(entry)
    assert result["ok"] and result["kind"] == "Component", result["error"]
    answers = project.recorded_answers
    entity = yaml.safe_load(entry.read_text())
    assert entity["metadata"]["name"] == answers["project_slug"]
    assert entity["metadata"]["title"] == answers["project_name"]
    assert entity["metadata"]["description"] == answers["description"]
    annotations = entity["metadata"]["annotations"]
    assert annotations["github.com/project-slug"] == f"{answers['github_owner']}/{answers['project_slug']}"
    assert annotations["deployment-patterns/template-release"] == str(answers.get("_commit") or "unreleased")
    assert entity["spec"]["type"] == "service" and entity["spec"]["owner"] == answers["owner"]
    assert entity["spec"].get("system") == (answers.get("system") or None)
    assert set(entity["metadata"]["tags"]) == {answers["language"], answers["deployment_strategy"]}


def test_owner_defaults_to_the_github_owner_and_system_to_none(render):
    answers = render(language="go").recorded_answers
    assert answers["owner"] == answers["github_owner"] and answers["system"] == ""


@pytest.mark.parametrize(("owner", "system"), [("group:default/team-payments", "payments"),
                                               ("user:jane.doe", "system:platform/payments-core")])
def test_owner_and_system_references_are_valid_backstage(render, owner, system):
    project = render(language="node", owner=owner, system=system)
    (result,) = backstage(project.path / "catalog-info.yaml")
    assert result["ok"], result["error"]
    spec = yaml.safe_load((project.path / "catalog-info.yaml").read_text())["spec"]
    assert (spec["owner"], spec["system"]) == (owner, system)


def test_the_validator_refuses_what_backstage_refuses(tmp_path):
    """The check is live: Backstage's own rules refuse a bad name, a missing owner, a foreign field."""
    bad = tmp_path / "catalog-info.yaml"
    bad.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: 'bad name!'}\n"
        "spec: {type: service, lifecycle: experimental, owner: x}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: ok}\n"
        "spec: {type: service, lifecycle: experimental}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: ok}\nfoo: bar\n"
        "spec: {type: service, lifecycle: experimental, owner: x}\n")
    results = backstage(bad)
    assert [r["ok"] for r in results] == [False, False, False]
    assert '"metadata.name" is not valid' in results[0]["error"]
    assert "must have required property 'owner'" in results[1]["error"]
    assert "must NOT have additional properties" in results[2]["error"]
