"""Multi-arch images: the deploy workflow pushes linux/amd64 and linux/arm64 in one manifest list,
scanned, signed and attested for both; each language builds for arm64 without emulating what need
not be emulated.

No Docker engine runs here, so the arm64 image itself is never built. What can be checked is:
- Go: the service cross-compiles for arm64 (GOARCH=arm64, as the Dockerfile's build stage does on
  the build platform), and the binary is an aarch64 ELF;
- Node: the npm stages run on the build platform, which is right only while every production
  package is platform-independent: read from package-lock.json;
- Django: the build stage installs the locked wheels for the target (under emulation), which works
  only while every locked package with compiled code publishes a Linux aarch64 wheel for the
  image's Python: read from uv.lock.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from helpers import LANGUAGES, tool_env
from test_workflows import load, step_named

from extensions.facts import FACTS

QEMU = "docker/setup-qemu-action@96fe6ef7f33517b61c61be40b68a1882f3264fb8"


def image_job(project) -> dict:
    return load(project.path / ".github/workflows/deploy.yml")["jobs"]["image"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_release_is_one_manifest_list_for_amd64_and_arm64(render, language):
    job = image_job(render(language=language))
    build = step_named(job, "Build and push")
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64" and build["with"]["push"] is True
    # emulation only for a language that runs target-platform commands at build time
    qemu = [step for step in job["steps"] if step.get("uses", "").startswith("docker/setup-qemu-action@")]
    assert bool(qemu) == bool(FACTS[language]["emulated_build"])
    if qemu:
        assert qemu[0]["uses"] == QEMU and qemu[0]["with"] == {"platforms": "arm64"}
    # the signature covers the list and each platform's image; provenance the list; an SBOM each
    assert "cosign sign --yes --recursive" in step_named(job, "Sign")["run"]
    assert step_named(job, "Build provenance")["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    for arch in ("amd64", "arm64"):
        digest = f"${{{{ steps.platform.outputs.{arch} }}}}"
        assert step_named(job, f"SBOM of the linux/{arch}")["with"]["image"] == f"${{{{ env.IMAGE }}}}@{digest}"
        attestation = step_named(job, f"SBOM attestation, linux/{arch}")
        assert attestation["with"]["subject-digest"] == digest
        assert attestation["with"]["sbom-path"] == step_named(job, f"SBOM of the linux/{arch}")["with"]["output-file"]


def test_platform_digests_are_read_from_the_manifest_list(render, tmp_path):
    """The step that finds each platform's digest, run against a manifest list as `docker buildx
    imagetools inspect --raw` prints it (docker stands in as a script printing that document)."""
    step = step_named(image_job(render(language="go")), "Digest of each platform's image")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "3" * 64, "platform": {"os": "unknown", "architecture": "unknown"}}]}
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(index)}\nEOF\n")
    (fake / "docker").chmod(0o755)
    output = tmp_path / "output"

    def run_step(document: dict) -> subprocess.CompletedProcess[str]:
        (fake / "docker").write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(document)}\nEOF\n")
        output.write_text("")
        env = tool_env(IMAGE_REF="ghcr.io/o/s@sha256:" + "0" * 64, GITHUB_OUTPUT=str(output))
        env["PATH"] = f"{fake}:{env['PATH']}"
        return subprocess.run(["bash", "-e", "-c", step["run"]], env=env, text=True, capture_output=True,
                              check=False)

    assert run_step(index).returncode == 0
    assert output.read_text() == f"amd64=sha256:{'1' * 64}\narm64=sha256:{'2' * 64}\n"
    index["manifests"] = index["manifests"][:1]
    proc = run_step(index)
    assert proc.returncode != 0 and "no linux/arm64 image" in proc.stdout


def test_go_cross_compiles_for_arm64(render, tmp_path):
    project = render(language="go")
    binary = tmp_path / "server"
    subprocess.run(["go", "build", "-trimpath", "-o", str(binary), "./cmd/server"], cwd=project.path, check=True,
                   env=tool_env(CGO_ENABLED="0", GOOS="linux", GOARCH="arm64"), capture_output=True, timeout=600)
    header = binary.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    dockerfile = (project.path / "Dockerfile").read_text()
    assert "FROM --platform=$BUILDPLATFORM" in dockerfile and "GOOS=$TARGETOS GOARCH=$TARGETARCH" in dockerfile


def test_node_production_packages_are_platform_independent(render):
    """The npm stages run on the build platform for every target: no production package may
    carry an install script or a cpu/os restriction."""
    project = render(language="node")
    lock = json.loads((project.path / "package-lock.json").read_text())
    production = {path: entry for path, entry in lock["packages"].items() if path and not entry.get("dev")}
    assert production, "no production packages read"
    bound = {path for path, entry in production.items()
             if entry.get("hasInstallScript") or entry.get("cpu") or entry.get("os")}
    assert not bound, f"platform-bound production packages: {sorted(bound)}"
    stages = re.findall(r"^FROM (\S+ )?\S+ AS (\S+)$", (project.path / "Dockerfile").read_text(), re.MULTILINE)
    assert {name for platform, name in stages if platform.strip() == "--platform=$BUILDPLATFORM"} == {
        "deps", "prod-deps"}, stages


def linux_aarch64(python: str) -> dict[str, str]:
    """The environment PEP 508 markers see in the arm64 image."""
    return {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64",
            "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "python_version": python, "python_full_version": f"{python}.0", "extra": ""}


def shipped(lock: dict, environment: dict[str, str]) -> set[str]:
    """The packages the image installs: the project's dependencies (no dev group), followed through
    uv.lock, each edge kept only where its marker holds in ENVIRONMENT."""
    from packaging.markers import Marker

    by_name = {package["name"]: package for package in lock["package"]}
    (project,) = [p for p in lock["package"] if {"editable", "virtual"} & p.get("source", {}).keys()]
    todo, seen = [d for d in project.get("dependencies", [])], set()
    while todo:
        dependency = todo.pop()
        if dependency.get("marker") and not Marker(dependency["marker"]).evaluate(environment):
            continue
        package = by_name[dependency["name"]]
        # an extra (gunicorn[gevent], psycopg[binary]) brings its optional dependencies
        for extra in dependency.get("extra", []):
            todo += package.get("optional-dependencies", {}).get(extra, [])
        if dependency["name"] in seen:
            continue
        seen.add(dependency["name"])
        todo += package.get("dependencies", [])
    return seen


@pytest.mark.parametrize("python", FACTS["django"]["versions"])
def test_django_shipped_compiled_packages_have_aarch64_wheels(render, python):
    import tomllib

    project = render(language="django", python_version=python)
    lock = tomllib.loads((project.path / "uv.lock").read_text())
    names = shipped(lock, linux_aarch64(python))
    assert {"django", "gunicorn", "gevent", "psycopg-binary"} <= names, sorted(names)
    cp = "cp" + python.replace(".", "")
    compiled, missing = [], []
    for package in lock["package"]:
        wheels = [wheel["url"].rsplit("/", 1)[-1] for wheel in package.get("wheels", [])]
        if package["name"] not in names or any(name.endswith("-none-any.whl") for name in wheels):
            continue  # not in the image, or pure Python
        compiled.append(package["name"])
        # CPython wheels for this version (or the stable ABI), or version-free ones (py3-none)
        tags = rf"(?:{cp}-{cp}|cp3\d+-abi3|py3-none)"
        if not any(re.search(rf"-{tags}-[^-]*(?:many|musl)linux[^-]*aarch64[^-]*\.whl$", name) for name in wheels):
            missing.append(package["name"])
    assert compiled, "no compiled package in the image, read from uv.lock"
    assert not missing, f"no Linux aarch64 wheel for Python {python}: {missing} (compiled: {compiled})"
