"""Layer 3: static checkers over every render. Later capabilities add their checkers here."""

from __future__ import annotations

from helpers import run


def test_yamllint_every_yaml_file(project):
    files = [str(p) for p in project.yaml_files()]
    assert files, "every render has YAML files"
    run(["yamllint", "--strict", "-c", str(project.path / ".yamllint.yaml"), *files], cwd=project.path)
