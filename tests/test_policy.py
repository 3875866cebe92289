"""Policy: checkov finds nothing in any render (built overlays included), and no render holds a secret.

checkov runs from its own virtual environment (scripts/checkov.sh creates .cache/checkov-venv from
the pinned requirements-checkov.txt), offline (`--skip-download`) and limited to the frameworks
that matter here. Starting checkov costs ~8 s of imports, so every render of the matrix (with
each of its overlays built as deploy/scripts/deploy.sh builds it: namespace, image by digest) is
scanned in ONE run per test session and the findings are split per render. A skipped check must
carry its reason in place: `# checkov:skip=CKV_...: why` next to what it excuses in a Dockerfile or
workflow; on a Kubernetes object, whose comments `kubectl kustomize` drops, the annotation
`checkov.io/skip1: CKV_...=why`.

Secrets: Yelp's detect-secrets library with its default plugins (keywords, private keys, cloud
tokens, high-entropy strings) over every file of every render. A deliberate non-secret (test data,
a throwaway CI database password, Django's development-only key) says so where it stands, with
detect-secrets' own pragma and a reason: `# pragma: allowlist secret: why` (or `nextline`).
Documentation placeholders such as postgres://USER:PASSWORD@HOST are not values and are ignored,
and so are values that announce themselves as CI-only (`ci-only-...`): the Django integration job's
throwaway database password and key sit inside a YAML block scalar (the container's env file),
where no comment can stand.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from helpers import MATRIX, ROOT, Project, run

CHECKOV = ROOT / "scripts" / "checkov.sh"
FRAMEWORKS = ["dockerfile", "kubernetes", "github_actions"]
BUILT = "built-overlays"  # folder, inside each scanned render copy, for `kubectl kustomize` outputs
IDS = [f"{language}-{strategy}" for language, strategy in MATRIX]


def checkov(directory: Path) -> list[dict]:
    """checkov's JSON reports (one per framework that found something to scan) for a directory."""
    proc = run(
        [
            str(CHECKOV),
            "-d",
            str(directory),
            "--compact",
            "--skip-download",
            "--output",
            "json",
            "--framework",
            *FRAMEWORKS,
        ],
        check=False,
        timeout=900,
    )
    # exit 1 means "failed checks" and still prints the report; anything else is checkov failing
    assert proc.returncode in (0, 1), f"checkov exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    reports = json.loads(proc.stdout) if proc.stdout.strip() else []
    return reports if isinstance(reports, list) else [reports]


def overlays(project: Project) -> list[Path]:
    root = project.path / "deploy" / "k8s" / "overlays"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "kustomization.yaml").exists())


# deploy.sh deploys an image by digest; this one stands for it in what the policy scan sees
DIGEST = "sha256:" + "0" * 64


def build_overlays(project: Project, dest: Path) -> list[str]:
    """Each overlay built as deploy/scripts/deploy.sh builds it, into dest/<overlay>.yaml.

    deploy.sh (lib.sh `render`) copies deploy/k8s, adds a release kustomization over the overlay
    with the namespace and the image by digest, and builds that: so does this. A preview's
    namespace is the pool's slot its pull request claimed (`<slug>-preview-<slot>`).
    """
    dest.mkdir(parents=True, exist_ok=True)
    answers = project.recorded_answers
    image = f"ghcr.io/{answers['github_owner'].lower()}/{answers['project_slug']}"
    names = []
    for overlay in overlays(project):
        work = dest / f".{overlay.name}-k8s"
        shutil.copytree(project.path / "deploy" / "k8s", work)
        release = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"../overlays/{overlay.name}"],
            "images": [{"name": image, "digest": DIGEST}],
        }
        if overlay.name == "preview":  # a slot of the pool other than the overlay's own
            release["namespace"] = f"{answers['project_slug']}-preview-2"
        (work / "release").mkdir()
        (work / "release" / "kustomization.yaml").write_text(yaml.safe_dump(release))
        built = run(["kubectl", "kustomize", str(work / "release")], cwd=project.path).stdout
        shutil.rmtree(work)
        (dest / f"{overlay.name}.yaml").write_text(built)
        names.append(overlay.name)
    return names


def scan_copy(project: Project, dest: Path) -> None:
    """What checkov scans for one render: the render with its Kubernetes manifests as they reach a
    cluster (the built overlays), not the kustomize sources (a base without its namespace and
    image, patches that are fragments of objects)."""
    shutil.copytree(
        project.path,
        dest,
        ignore=lambda folder, names: [
            n
            for n in names
            if n in {".git", "node_modules", ".venv"} or Path(folder, n) == project.path / "deploy" / "k8s"
        ],
    )
    build_overlays(project, dest / BUILT)


@pytest.fixture(scope="session")
def policy_scan(render, tmp_path_factory):
    """One checkov run over all nine renders; returns {render id: {"reports": [...], "built": [...]}}."""
    root = tmp_path_factory.mktemp("checkov")
    built = {}
    for (language, strategy), ident in zip(MATRIX, IDS):
        project = render(language=language, deployment_strategy=strategy)
        scan_copy(project, root / ident)
        built[ident] = sorted(p.stem for p in (root / ident / BUILT).glob("*.yaml"))
    by_render: dict[str, dict] = {
        ident: {"failed": [], "passed": [], "skipped": [], "parsing_errors": [], "built": built[ident]}
        for ident in IDS
    }
    for report in checkov(root):
        results = report.get("results", {})
        for kind in ("failed", "passed", "skipped"):
            for check in results.get(f"{kind}_checks", []):
                ident = check["file_path"].lstrip("/").split("/")[0]
                by_render[ident][kind].append({**check, "check_type": report.get("check_type")})
        for path in results.get("parsing_errors", []):
            by_render[str(path).removeprefix(str(root)).lstrip("/").split("/")[0]]["parsing_errors"].append(
                path
            )
    return by_render


def describe(check: dict) -> str:
    return (
        f"{check['check_id']} {check['check_name']} in {check['file_path']}"
        f" ({check.get('resource')}, lines {check.get('file_line_range')})"
    )


@pytest.mark.parametrize("ident", IDS)
def test_checkov_reports_no_failed_check(policy_scan, ident):
    result = policy_scan[ident]
    assert not result["failed"], "checkov failed checks:\n" + "\n".join(map(describe, result["failed"]))
    assert not result["parsing_errors"], result["parsing_errors"]
    scanned_types = {check["check_type"] for check in result["passed"]}
    assert "dockerfile" in scanned_types, "checkov scanned the Dockerfile"


@pytest.mark.parametrize("ident", IDS)
def test_every_checkov_skip_gives_its_reason_in_place(policy_scan, ident):
    for check in policy_scan[ident]["skipped"]:
        reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        assert reason and reason != "No comment provided", f"{describe(check)} is skipped without a reason"


@pytest.mark.parametrize("ident", IDS)
def test_built_overlays_are_scanned(policy_scan, ident):
    """Kustomize patches only make sense merged: the built output is what reaches the cluster."""
    result = policy_scan[ident]
    for overlay in result["built"]:
        scanned = {
            check["file_path"]
            for kind in ("passed", "failed", "skipped")
            for check in result[kind]
            if check["check_type"] == "kubernetes"
        }
        assert f"/{ident}/{BUILT}/{overlay}.yaml" in scanned, (
            f"checkov did not scan the built {overlay} overlay"
        )


def clone(project: Project, dest: Path) -> Path:
    """The render as a fresh clone has it: no .git, node_modules or virtual environment."""
    shutil.copytree(project.path, dest, ignore=shutil.ignore_patterns(".git", "node_modules", ".venv"))
    return dest


@pytest.mark.parametrize(("language", "strategy"), MATRIX, ids=IDS)
def test_checkov_at_the_repository_root_finds_nothing(render, tmp_path, language, strategy):
    """Platform teams run `checkov -d .` at the root of a repository, every framework, no options
    of ours: the rendered .checkov.yaml makes that scan what a deploy applies (each overlay with
    its base), and skips only what cannot apply before CI has built the image (its digest)."""
    root = clone(render(language=language, deployment_strategy=strategy), tmp_path / "repo")
    proc = run([str(CHECKOV), "-d", ".", "--compact", "--skip-download", "--output", "json"], cwd=root,
               check=False, timeout=900, CHECKOV_PARALLELIZATION_TYPE="none")
    assert proc.returncode == 0, f"checkov -d . exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr}"
    reports = json.loads(proc.stdout)
    reports = {report["check_type"]: report for report in (reports if isinstance(reports, list) else [reports])}
    assert {"dockerfile", "github_actions", "kustomize"} <= set(reports), set(reports)
    for report in reports.values():
        assert report["summary"]["failed"] == 0 and report["summary"]["parsing_errors"] == 0, report["summary"]
    # every overlay is scanned, built on its base, with its namespace
    resources = {check["resource"] for check in reports["kustomize"]["results"]["passed_checks"]}
    for env in ("staging", "production", "preview"):
        assert any(r.startswith(f"overlay:{env}:Deployment.") for r in resources), (env, sorted(resources)[:5])
    assert not any(".default." in r for r in resources), "an overlay object without its namespace"
    # what the configuration skips, each with its reason beside it
    config = (root / ".checkov.yaml").read_text()
    skipped = yaml.safe_load(config)["skip-check"]
    assert set(skipped) == {"CKV_K8S_14", "CKV_K8S_15", "CKV_K8S_43"}, skipped
    for check in skipped:
        assert re.search(rf"- {check} # \S", config), f"{check} is skipped without its reason"


def test_checkov_catches_a_planted_violation(tmp_path):
    """The scan is live: a root container without a HEALTHCHECK must fail."""
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\nRUN echo hi\n")
    failed = {
        check["check_id"]
        for report in checkov(tmp_path)
        for check in report.get("results", {}).get("failed_checks", [])
    }
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3"} <= failed, failed


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------
# PASSWORD, <password>, ${PASSWORD}; and ci-only-* values
NOT_A_SECRET = re.compile(r"^(?:[A-Z][A-Z_]*|<[^>]*>|\$\{?[A-Za-z_]+\}?|ci-only-[a-z0-9-]+)$")


def secrets_in(paths: list[Path]) -> list[str]:
    found = SecretsCollection()
    with default_settings():
        for path in paths:
            found.scan_file(str(path))
    return [
        f"{secret.filename}:{secret.line_number}: {secret.type}"
        for _, secret in found
        if not NOT_A_SECRET.match((secret.secret_value or "").partition("\n")[0])
    ]


def test_no_secret_looking_value_in_any_render(project):
    findings = secrets_in([project.path / rel for rel in project.files()])
    assert not findings, "secret-looking values:\n" + "\n".join(findings)


def test_secret_scan_catches_planted_secrets(tmp_path):
    planted = tmp_path / "settings.env"
    planted.write_text(
        'AWS_ACCESS_KEY_ID=AKIAIOSFODNN7QWERTYU\npassword = "hunter2-correct-horse"\n'
        "DATABASE_URL=postgres://app:s3cr3t-Pw@db:5432/app\n"
        "# postgres://USER:PASSWORD@HOST:5432/NAME\n"
    )
    assert {line.split(":")[1] for line in secrets_in([planted])} == {"1", "2", "3"}
