"""deploy/scripts: shellcheck, and the scripts' decisions, run against a recording stand-in for kubectl.

No cluster runs here. `KubectlStandIn` puts tests/kubectl_standin.py on PATH as `kubectl`: it keeps
a small cluster state, answers the commands the scripts use, serves the contract's endpoints on a
port-forward (503 for an image scripted as broken) and records every call. The tests read that
record: which colour got the release, the sequence of canary weights, the rollback after a failed
gate, that a second deploy of the same image changes nothing. The real-cluster check is the CI
workflow's kind job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from helpers import ROOT, VENV_BIN, run

from extensions.context import FACTS

IMAGE_A = "ghcr.io/my-org/my-service@sha256:" + "a" * 64
IMAGE_B = "ghcr.io/my-org/my-service@sha256:" + "b" * 64
IMAGE_C = "ghcr.io/my-org/my-service@sha256:" + "c" * 64
SLUG = "my-service"
STAGING = f"{SLUG}-staging"
COMMON_SCRIPTS = {"lib.sh", "config.sh", "deploy.sh", "rollback.sh", "smoke-test.sh", "teardown-preview.sh"}
STRATEGY_SCRIPTS = {"rolling": {"lib-rolling.sh"},
                    "blue-green": {"lib-blue-green.sh", "switch-colour.sh"},
                    "canary": {"lib-canary.sh", "promote-canary.sh", "abort-canary.sh"}}
MUTATING = {"apply", "patch", "scale", "delete", "rollout undo"}
# Short timings: the stand-in answers at once.
FAST = {"ROLLOUT_TIMEOUT": "5s", "POLL_SECONDS": "0", "CANARY_INTERVAL_SECONDS": "0", "SMOKE_ATTEMPTS": "1",
        "SMOKE_DELAY_SECONDS": "0", "ROUTE_TIMEOUT": "1", "MIGRATION_TIMEOUT": "5"}


class KubectlStandIn:
    """A recording stand-in for kubectl (tests/kubectl_standin.py) on PATH, with its cluster state."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "kubectl-standin"
        self.bin = self.dir / "bin"
        self.bin.mkdir(parents=True)
        self.state_path = self.dir / "state.json"
        self.log_path = self.dir / "calls.jsonl"
        self.log_path.touch()
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        wrapper = self.bin / "kubectl"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{ROOT / "tests" / "kubectl_standin.py"}" "$@"\n')
        wrapper.chmod(0o755)
        self.real_kubectl = shutil.which("kubectl")
        assert self.real_kubectl, "kubectl (for kustomize) must be installed"
        self.state = {"context": "standin", "reachable": True, "objects": {}, "history": {}, "script": {}}
        self.save()

    # state ---------------------------------------------------------------------------------------
    def save(self) -> None:
        self.state_path.write_text(json.dumps(self.state))

    def load(self) -> dict:
        self.state = json.loads(self.state_path.read_text())
        return self.state

    def script(self, **behaviour) -> None:
        self.load()
        self.state["script"].update(behaviour)
        self.save()

    def add_namespace(self, namespace: str = STAGING, labels: dict | None = None) -> None:
        self.load()
        self.state["objects"][f"Namespace//{namespace}"] = {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels or {}}}
        self.save()

    def add_secret(self, namespace: str = STAGING) -> None:
        """The platform's part: the namespace and the Secret the pods reference."""
        self.add_namespace(namespace)
        self.load()
        self.state["objects"][f"Secret/{namespace}/{SLUG}-secrets"] = {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{SLUG}-secrets", "namespace": namespace}}
        self.save()

    def obj(self, kind: str, name: str, namespace: str = STAGING) -> dict:
        return self.load()["objects"][f"{kind}/{namespace}/{name}"]

    def image(self, deployment: str, namespace: str = STAGING) -> str:
        return self.obj("Deployment", deployment, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]

    def replicas(self, deployment: str, namespace: str = STAGING) -> int:
        return self.obj("Deployment", deployment, namespace)["spec"]["replicas"]

    def selector_colour(self, service: str) -> str:
        return self.obj("Service", service)["spec"]["selector"]["colour"]

    # calls ---------------------------------------------------------------------------------------
    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def mark(self) -> int:
        return len(self.calls())

    def changes_since(self, mark: int) -> list[str]:
        return [change for call in self.calls()[mark:] for change in call["changes"]]

    def commands_since(self, mark: int) -> list[str]:
        """'apply', 'patch', 'rollout undo'... of each recorded call after `mark`."""
        return [" ".join(call["words"][:2]) if call["words"][0] in {"rollout", "config"} else call["words"][0]
                for call in self.calls()[mark:]]

    def canary_weights(self, since: int = 0) -> list[int]:
        """The canary weight set by each patch of the HTTPRoute, in order."""
        weights = []
        for call in self.calls()[since:]:
            if "patch" in call["argv"] and "httproute" in call["argv"] and call["status"] == 0:
                patch = json.loads(call["argv"][call["argv"].index("--patch") + 1])
                weights += [op["value"] for op in patch if op["path"].endswith("backendRefs/1/weight")]
        return weights

    # running the scripts ----------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "SMOKE_", "DEPLOY_"))}
        env.update(FAST)
        env.update({
            "PATH": os.pathsep.join([str(self.bin), str(VENV_BIN), env.get("PATH", "")]),
            "KUBECONFIG": str(self.dir / "kubeconfig-unused-by-the-standin"),
            "KUBECTL_STANDIN_STATE": str(self.state_path), "KUBECTL_STANDIN_LOG": str(self.log_path),
            "KUBECTL_STANDIN_REAL": self.real_kubectl, "KUBECTL_STANDIN_PYTHONPATH": os.pathsep.join(sys.path),
            "TMPDIR": str(self.tmp),
        })
        env.update(extra)
        return env

    def run(self, project, script: str, *args: str, expect: int | None = 0, **env: str):
        proc = subprocess.run([str(project.path / "deploy" / "scripts" / script), *args], check=False,
                              cwd=project.path, env=self.env(**env), text=True, capture_output=True, timeout=180)
        if expect is not None:
            assert (proc.returncode == 0) == (expect == 0), (
                f"{script} {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        assert not list(self.tmp.iterdir()), "the scripts clean up their work directory"
        return proc

    def deploy(self, project, image: str, *args: str, env: str = "staging", expect: int | None = 0, **extra):
        return self.run(project, "deploy.sh", "--env", env, "--image", image, *args, expect=expect, **extra)


@pytest.fixture
def kubectl(tmp_path) -> KubectlStandIn:
    return KubectlStandIn(tmp_path)


def service(render, strategy: str, language: str = "node", **answers):
    return render(language=language, deployment_strategy=strategy, **answers)


# ------------------------------------------------------------------------------------------------
# Every render
# ------------------------------------------------------------------------------------------------
def test_scripts_are_the_strategys_and_pass_shellcheck(project):
    scripts = project.path / "deploy" / "scripts"
    names = {p.name for p in scripts.glob("*.sh")}
    assert names == COMMON_SCRIPTS | STRATEGY_SCRIPTS[project.strategy]
    for path in scripts.glob("*.sh"):
        text = path.read_text()
        executable = os.access(path, os.X_OK)
        assert executable == text.startswith("#!/usr/bin/env bash\n"), f"{path.name}: run, or sourced?"
        if executable:
            assert "\nset -Eeuo pipefail\n" in text, f"{path.name}: strict mode"
    # deploy/scripts/.shellcheckrc makes shellcheck follow the sourced libraries
    run(["shellcheck", "--severity=style", *sorted(names)], cwd=scripts)


def test_dry_run_without_a_cluster_prints_the_plan(project, kubectl):
    kubectl.state["context"] = None
    kubectl.save()
    proc = kubectl.deploy(project, IMAGE_A, "--dry-run")
    assert "dry-run without a cluster" in proc.stderr
    plan = proc.stdout
    serving = {"rolling": SLUG, "blue-green": f"{SLUG}-blue", "canary": f"{SLUG}-stable"}[project.strategy]
    assert f"name: {serving}" in plan and f"image: {IMAGE_A}" in plan, "the release kustomization is shown"
    apply = plan.index("--selector 'app.kubernetes.io/component!=migration'")
    assert plan.index(f"rollout status deployment/{serving}") > apply
    assert "port-forward" in plan
    if FACTS[project.language]["has_database"]:
        assert plan.index("--selector app.kubernetes.io/component=migration") < apply
    else:
        assert "component=migration\n" not in plan
    assert kubectl.commands_since(0) == ["config current-context"], "a dry-run changes nothing"


def assert_redeploy_changes_nothing(kubectl, project, image):
    mark = kubectl.mark()
    proc = kubectl.deploy(project, image)
    assert kubectl.changes_since(mark) == [], proc.stderr
    assert not set(kubectl.commands_since(mark)) & (MUTATING - {"apply"}), "only a no-op apply"
    assert "unchanged" in proc.stdout


def test_deploying_the_same_image_twice_changes_nothing(project, kubectl):
    # after a first release here; after a strategy's full release in the strategies' tests below
    kubectl.add_secret()
    kubectl.deploy(project, IMAGE_A)
    assert_redeploy_changes_nothing(kubectl, project, IMAGE_A)


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    ([], "--env is required"),
    (["--env", "qa", "--image", IMAGE_A], "--env must be one of"),
    (["--env", "staging"], "--image is required"),
    (["--env", "staging", "--image", "ghcr.io/my-org/my-service"], "with a tag or digest"),
    (["--env", "preview", "--image", IMAGE_A], "needs --namespace"),
    (["--env", "preview", "--image", IMAGE_A, "--namespace", "my-service-staging"], "preview namespace"),
    (["--env", "staging", "--image", IMAGE_A, "--force"], "unknown argument: --force"),
])
def test_bad_arguments_are_refused_clearly(render, kubectl, args, message):
    proc = kubectl.run(service(render, "rolling"), "deploy.sh", *args, expect=1)
    assert message in proc.stderr
    assert kubectl.calls() == [], "nothing reaches the cluster"


def test_missing_kubectl_is_named(render, kubectl, tmp_path):
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    for tool in ("bash", "dirname", "basename", "mktemp", "rm", "cat", "env"):
        (bare / tool).symlink_to(shutil.which(tool))
    proc = kubectl.deploy(service(render, "rolling"), IMAGE_A, expect=1, PATH=str(bare))
    assert "kubectl is required but not on PATH" in proc.stderr


@pytest.mark.parametrize("state,message", [
    ({"context": None}, "no kubectl context"),
    ({"reachable": False}, "the cluster did not answer"),
])
def test_no_cluster_stops_a_real_deploy(render, kubectl, state, message):
    kubectl.state.update(state)
    kubectl.save()
    proc = kubectl.deploy(service(render, "rolling"), IMAGE_A, expect=1)
    assert message in proc.stderr


def test_an_unknown_kube_context_is_named(render, kubectl):
    proc = kubectl.deploy(service(render, "rolling"), IMAGE_A, expect=1, KUBE_CONTEXT="prod-eu")
    assert "context 'prod-eu' (KUBE_CONTEXT) is not in the kubeconfig" in proc.stderr


def test_a_rollout_timeout_fails_the_first_deploy_clearly(render, kubectl):
    kubectl.script(rollout_fails=[SLUG])
    proc = kubectl.deploy(service(render, "rolling"), IMAGE_A, expect=1)
    assert f"deployment/{SLUG} did not become ready within 5s" in proc.stderr
    assert "rollout undo" not in kubectl.commands_since(0), "nothing to go back to on a first deploy"


# ------------------------------------------------------------------------------------------------
# Rolling
# ------------------------------------------------------------------------------------------------
def test_rolling_deploy_applies_waits_and_smoke_tests(render, kubectl):
    project = service(render, "rolling")
    kubectl.deploy(project, IMAGE_A)
    mark = kubectl.mark()
    kubectl.deploy(project, IMAGE_B)
    assert kubectl.image(SLUG) == IMAGE_B and kubectl.replicas(SLUG) == 2
    commands = kubectl.commands_since(mark)
    assert commands.index("apply") < commands.index("rollout status") < commands.index("port-forward")
    assert_redeploy_changes_nothing(kubectl, project, IMAGE_B)


def test_rolling_deploy_keeps_the_autoscalers_replica_count(render, kubectl):
    project = service(render, "rolling")
    kubectl.deploy(project, IMAGE_A, env="production")
    kubectl.load()["objects"][f"Deployment/{SLUG}-production/{SLUG}"]["spec"]["replicas"] = 7
    kubectl.save()
    kubectl.deploy(project, IMAGE_B, env="production")
    assert kubectl.replicas(SLUG, f"{SLUG}-production") == 7


def test_rolling_failed_rollout_is_undone(render, kubectl):
    project = service(render, "rolling")
    kubectl.deploy(project, IMAGE_A)
    kubectl.script(broken_images=[IMAGE_B])
    proc = kubectl.deploy(project, IMAGE_B, expect=1)
    assert "rollout undo" in kubectl.commands_since(0)
    assert kubectl.image(SLUG) == IMAGE_A, "traffic is back on the last good version"
    assert "traffic is back on the last good version" in proc.stderr


def test_rolling_rollback_to_a_revision(render, kubectl):
    project = service(render, "rolling")
    for image in (IMAGE_A, IMAGE_B, IMAGE_C):
        kubectl.deploy(project, image)
    kubectl.run(project, "rollback.sh", "--env", "staging")
    assert kubectl.image(SLUG) == IMAGE_B
    kubectl.run(project, "rollback.sh", "--env", "staging", "--revision", "1")
    assert kubectl.image(SLUG) == IMAGE_A
    assert any("--to-revision=1" in call["argv"] for call in kubectl.calls())


# ------------------------------------------------------------------------------------------------
# Blue-green
# ------------------------------------------------------------------------------------------------
def test_blue_green_releases_to_the_idle_colour_then_switches(render, kubectl):
    project = service(render, "blue-green")
    kubectl.deploy(project, IMAGE_A)
    assert (kubectl.selector_colour(SLUG), kubectl.image(f"{SLUG}-blue")) == ("blue", IMAGE_A)
    kubectl.deploy(project, IMAGE_B)
    assert kubectl.selector_colour(SLUG) == "green" and kubectl.selector_colour(f"{SLUG}-preview") == "blue"
    assert kubectl.image(f"{SLUG}-green") == IMAGE_B
    assert kubectl.image(f"{SLUG}-blue") == IMAGE_A and kubectl.replicas(f"{SLUG}-blue") == 2, \
        "the old colour keeps running for an instant rollback"
    mark = kubectl.mark()
    kubectl.deploy(project, IMAGE_C)
    assert kubectl.selector_colour(SLUG) == "blue", "green was live, so blue was idle"
    assert kubectl.image(f"{SLUG}-green") == IMAGE_B, "the live colour is never touched"
    commands = kubectl.commands_since(mark)
    assert commands.index("rollout status") < commands.index("port-forward") < commands.index("patch")
    assert_redeploy_changes_nothing(kubectl, project, IMAGE_C)


def test_blue_green_dry_run_plans_against_the_clusters_live_colour(render, kubectl):
    project = service(render, "blue-green")
    kubectl.deploy(project, IMAGE_A)
    kubectl.deploy(project, IMAGE_B)  # green is live
    mark = kubectl.mark()
    proc = kubectl.deploy(project, IMAGE_C, "--dry-run")
    assert kubectl.changes_since(mark) == []
    assert f"name: {SLUG}-blue" in proc.stdout and f"image: {IMAGE_C}" in proc.stdout
    assert "patch service my-service --type=merge --patch '{\"spec\":{\"selector\":{\"colour\":\"blue\"}}}'" \
        in proc.stdout


def test_blue_green_smoke_failure_never_switches(render, kubectl):
    project = service(render, "blue-green")
    kubectl.deploy(project, IMAGE_A)
    kubectl.script(broken_images=[IMAGE_B])
    mark = kubectl.mark()
    proc = kubectl.deploy(project, IMAGE_B, expect=1)
    assert "live traffic stays on blue" in proc.stderr
    assert "patch" not in kubectl.commands_since(mark) and kubectl.selector_colour(SLUG) == "blue"


def test_blue_green_failed_gate_after_the_switch_switches_back(render, kubectl):
    project = service(render, "blue-green")
    kubectl.deploy(project, IMAGE_A)
    kubectl.script(restarts={f"{SLUG}-green": 3})
    proc = kubectl.deploy(project, IMAGE_B, expect=1)
    assert "restarted 6 time(s)" in proc.stderr, "3 restarts in each of 2 pods"
    assert kubectl.selector_colour(SLUG) == "blue" and kubectl.selector_colour(f"{SLUG}-preview") == "green"


def test_blue_green_gate_runs_the_teams_error_check(render, kubectl):
    project = service(render, "blue-green")
    kubectl.deploy(project, IMAGE_A)
    check = 'test "$SERVICE" = my-service && case "$SELECTOR" in *colour=green) false;; esac'
    proc = kubectl.deploy(project, IMAGE_B, expect=1, DEPLOY_ERROR_CHECK=check)
    assert "DEPLOY_ERROR_CHECK failed" in proc.stderr and kubectl.selector_colour(SLUG) == "blue"


def test_blue_green_rollback_and_scale_down(render, kubectl):
    project = service(render, "blue-green")
    kubectl.deploy(project, IMAGE_A)
    kubectl.deploy(project, IMAGE_B)
    kubectl.run(project, "switch-colour.sh", "--env", "staging", "--scale-down-idle")
    assert kubectl.replicas(f"{SLUG}-blue") == 0 and kubectl.selector_colour(SLUG) == "green"
    proc = kubectl.run(project, "rollback.sh", "--env", "staging")
    assert "blue rests at 0 pods: scaling it to 2 first" in proc.stderr
    assert kubectl.selector_colour(SLUG) == "blue" and kubectl.replicas(f"{SLUG}-blue") == 2
    assert kubectl.image(f"{SLUG}-blue") == IMAGE_A
    kubectl.run(project, "rollback.sh", "--env", "staging", "--revision", "2", expect=1)
    kubectl.run(project, "switch-colour.sh", "--env", "staging", "--to", "green")
    assert kubectl.selector_colour(SLUG) == "green"


# ------------------------------------------------------------------------------------------------
# Canary
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answers,steps", [({}, [10, 25, 50, 100]), ({"canary_steps": "5,50,100"}, [5, 50, 100])])
def test_canary_walks_the_configured_steps_then_promotes(render, kubectl, answers, steps):
    project = service(render, "canary", language="go", **answers)
    kubectl.deploy(project, IMAGE_A)
    assert kubectl.canary_weights() == [], "the first release goes straight to stable"
    mark = kubectl.mark()
    kubectl.deploy(project, IMAGE_B)
    assert kubectl.canary_weights(mark) == [*steps, 0], "each step, then all traffic back to (promoted) stable"
    assert kubectl.image(f"{SLUG}-stable") == IMAGE_B and kubectl.replicas(f"{SLUG}-canary") == 0
    route = kubectl.obj("HTTPRoute", SLUG)["spec"]["rules"][0]["backendRefs"]
    assert [b["weight"] for b in route] == [100, 0]
    scales = [call["argv"][-1] for call in kubectl.calls()[mark:] if "scale" in call["argv"]]
    # canary pods follow the weight (2 stable pods in staging): at least 1, 2 at 100%, then 0
    assert scales[-2:] == ["--replicas=2", "--replicas=0"] and "--replicas=1" in scales[0]
    assert_redeploy_changes_nothing(kubectl, project, IMAGE_B)


def test_canary_failed_gate_aborts_and_restores_stable(render, kubectl):
    project = service(render, "canary")
    kubectl.deploy(project, IMAGE_A)
    mark = kubectl.mark()
    proc = kubectl.deploy(project, IMAGE_B, expect=1, DEPLOY_ERROR_CHECK='test "${WEIGHT:-0}" -lt 25')
    assert "gate failed at 25%" in proc.stderr
    assert kubectl.canary_weights(mark) == [10, 25, 0], "abort sets the canary weight to 0"
    assert kubectl.replicas(f"{SLUG}-canary") == 0 and kubectl.image(f"{SLUG}-stable") == IMAGE_A


def test_canary_broken_image_never_gets_traffic(render, kubectl):
    project = service(render, "canary")
    kubectl.deploy(project, IMAGE_A)
    kubectl.script(broken_images=[IMAGE_B])
    mark = kubectl.mark()
    proc = kubectl.deploy(project, IMAGE_B, expect=1)
    assert "smoke test before taking any traffic" in proc.stderr
    assert not any(kubectl.canary_weights(mark)), "no weight above 0 was ever set"
    assert kubectl.replicas(f"{SLUG}-canary") == 0


def test_canary_waits_for_the_gateway_to_accept_the_route(render, kubectl):
    project = service(render, "canary")
    kubectl.deploy(project, IMAGE_A, REQUIRE_ROUTE_ACCEPTED="false")
    kubectl.script(route_accepted=False)
    mark = kubectl.mark()
    proc = kubectl.deploy(project, IMAGE_B, expect=1)
    assert "was not accepted by its Gateway" in proc.stderr and "httproute-patch.yaml" in proc.stderr
    assert not any(kubectl.canary_weights(mark))


def test_canary_left_over_is_aborted_before_a_new_release(render, kubectl):
    project = service(render, "canary")
    kubectl.deploy(project, IMAGE_A)
    proc = kubectl.deploy(project, IMAGE_B, expect=1, DEPLOY_ERROR_CHECK="false")
    mark = kubectl.mark()
    kubectl.load()["objects"][f"HTTPRoute/{STAGING}/{SLUG}"]["spec"]["rules"][0]["backendRefs"][1]["weight"] = 10
    kubectl.save()  # as if a deploy had been killed at 10%
    proc = kubectl.deploy(project, IMAGE_B)
    assert "aborting it first" in proc.stderr
    assert kubectl.canary_weights(mark)[0] == 0 and kubectl.image(f"{SLUG}-stable") == IMAGE_B


def test_canary_promote_abort_and_rollback_scripts(render, kubectl):
    project = service(render, "canary")
    kubectl.deploy(project, IMAGE_A)
    kubectl.deploy(project, IMAGE_B)
    # rollback with no canary in progress: stable goes back a revision
    kubectl.run(project, "rollback.sh", "--env", "staging")
    assert kubectl.image(f"{SLUG}-stable") == IMAGE_A
    # a canary held at its first step, then aborted, then promoted
    kubectl.deploy(project, IMAGE_C, expect=1, DEPLOY_ERROR_CHECK="false")
    kubectl.run(project, "abort-canary.sh", "--env", "staging")
    assert kubectl.canary_weights()[-1] == 0 and kubectl.replicas(f"{SLUG}-canary") == 0
    kubectl.run(project, "promote-canary.sh", "--env", "staging")
    assert kubectl.image(f"{SLUG}-stable") == IMAGE_C and kubectl.canary_weights()[-1] == 0
    kubectl.run(project, "rollback.sh", "--env", "staging", "--revision", "1")
    assert kubectl.image(f"{SLUG}-stable") == IMAGE_A


# ------------------------------------------------------------------------------------------------
# Database migrations (Django)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_migrations_run_before_any_traffic_moves(render, kubectl, strategy):
    project = service(render, strategy, language="django")
    kubectl.add_secret()
    kubectl.deploy(project, IMAGE_A)
    mark = kubectl.mark()
    kubectl.deploy(project, IMAGE_B)
    calls = kubectl.calls()[mark:]
    applies = [" ".join(c["argv"][c["argv"].index("--selector") + 1:]) for c in calls if "apply" in c["argv"]]
    assert applies == ["app.kubernetes.io/component=config", "app.kubernetes.io/component=migration",
                       "app.kubernetes.io/component!=migration"]
    job = kubectl.obj("Job", f"{SLUG}-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert job["image"] == IMAGE_B and job["command"] == ["python", "manage.py", "migrate", "--noinput"]
    first_traffic = next(i for i, c in enumerate(calls) if c["words"][0] in {"patch", "scale"}
                         or "app.kubernetes.io/component!=migration" in c["words"])
    assert ["delete", "job", f"{SLUG}-migrate"] in [c["words"][:3] for c in calls[:first_traffic]], \
        "the previous run's Job (immutable) is replaced before the release"


def test_failed_migration_stops_the_release(render, kubectl):
    project = service(render, "blue-green", language="django")
    kubectl.add_secret()
    kubectl.deploy(project, IMAGE_A)
    kubectl.script(job_fails=True)
    mark = kubectl.mark()
    proc = kubectl.deploy(project, IMAGE_B, expect=1)
    assert "database migration job/my-service-migrate failed" in proc.stderr and "no traffic moved" in proc.stderr
    assert not [c for c in kubectl.changes_since(mark) if c.startswith(("Deployment/", "Service/"))]


def test_a_missing_secret_is_named_before_anything_is_applied(render, kubectl):
    project = service(render, "rolling", language="django")
    proc = kubectl.deploy(project, IMAGE_A, expect=1)
    assert "namespace my-service-staging does not exist, and the pods need the Secret" in proc.stderr
    kubectl.add_namespace()
    proc = kubectl.deploy(project, IMAGE_A, expect=1)
    assert "Secret my-service-secrets is missing in namespace my-service-staging" in proc.stderr
    assert "DJANGO_SECRET_KEY DATABASE_URL" in proc.stderr
    assert kubectl.changes_since(0) == []


def test_a_missing_namespace_is_created_restricted(render, kubectl):
    kubectl.deploy(service(render, "rolling"), IMAGE_A)
    labels = kubectl.obj("Namespace", STAGING, namespace="")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# ------------------------------------------------------------------------------------------------
# Previews
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_preview_namespace_is_created_deployed_and_torn_down(render, kubectl, strategy):
    project = service(render, strategy)
    namespace = f"{SLUG}-pr-42"
    kubectl.deploy(project, IMAGE_A, "--namespace", namespace, env="preview")
    labels = kubectl.obj("Namespace", namespace, namespace="")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    objects = kubectl.load()["objects"]
    assert all(k.split("/")[1] == namespace for k in objects if not k.startswith("Namespace/")), \
        "everything lands in the preview namespace"
    assert not any(k.startswith("HTTPRoute/") for k in objects), "a preview gets no route on the shared Gateway"
    assert kubectl.canary_weights() == []
    kubectl.run(project, "teardown-preview.sh", "--namespace", namespace)
    assert kubectl.load()["objects"] == {}
    proc = kubectl.run(project, "teardown-preview.sh", "--namespace", namespace)
    assert "nothing to delete" in proc.stderr


def test_preview_namespace_of_a_long_slug_is_shortened_as_the_workflow_does(render, kubectl):
    slug = "a-service-with-a-name-long-enough-to-need-shortening-abcdefgh"  # 60 characters
    project = render(language="go", deployment_strategy="rolling", project_slug=slug)
    kubectl.state["context"] = None
    kubectl.save()
    shortened = f"{slug[:63 - len('-pr-1234')]}-pr-1234"
    proc = kubectl.deploy(project, "ghcr.io/my-org/x:pr-1234", "--dry-run", "--namespace", shortened, env="preview")
    assert f"namespace: {shortened}" in proc.stdout
    kubectl.deploy(project, "ghcr.io/my-org/x:1", "--namespace", f"{slug[:50]}-pr-1234", env="preview", expect=1)


def test_teardown_refuses_namespaces_it_did_not_create(render, kubectl):
    project = service(render, "rolling")
    proc = kubectl.run(project, "teardown-preview.sh", "--namespace", STAGING, expect=1)
    assert "not a preview namespace" in proc.stderr
    kubectl.add_namespace(f"{SLUG}-pr-7")
    proc = kubectl.run(project, "teardown-preview.sh", "--namespace", f"{SLUG}-pr-7", expect=1)
    assert "not labelled app.kubernetes.io/part-of=my-service" in proc.stderr
    assert f"Namespace//{SLUG}-pr-7" in kubectl.load()["objects"]


# ------------------------------------------------------------------------------------------------
# smoke-test.sh against a real HTTP server
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def contract_server():
    """A local server answering the service contract; `statuses` overrides a path's status."""
    statuses: dict[str, int] = {}
    bodies = {"/health": '{"status": "ok"}', "/ready": '{"status":"ready"}',
              "/health/detailed": '{"version":"1.0.0","uptime_seconds":3}',
              "/metrics": "# HELP http_requests_total Requests\n# TYPE http_requests_total counter\n"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status = statuses.get(self.path, 200 if self.path in bodies else 404)
            body = bodies.get(self.path, "").encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", statuses, bodies
    server.shutdown()


def test_smoke_test_passes_a_healthy_service(render, kubectl, contract_server):
    url, _, _ = contract_server
    proc = kubectl.run(service(render, "rolling"), "smoke-test.sh", url + "/")
    assert "passed" in proc.stdout


@pytest.mark.parametrize("path,status,body,reported", [
    ("/ready", 503, None, "GET /ready: HTTP 503"),
    ("/metrics", 200, "not prometheus", "GET /metrics: 200, but the body does not match"),
    ("/health", 200, '{"status":"degraded"}', "GET /health: 200, but the body does not match"),
])
def test_smoke_test_fails_on_a_broken_endpoint(render, kubectl, contract_server, path, status, body, reported):
    url, statuses, bodies = contract_server
    statuses[path] = status
    if body is not None:
        bodies[path] = body
    proc = kubectl.run(service(render, "rolling"), "smoke-test.sh", url, expect=1, SMOKE_ATTEMPTS="2")
    assert reported in proc.stderr and "after 2 attempt(s)" in proc.stderr


def test_smoke_test_reports_an_unreachable_service(render, kubectl):
    proc = kubectl.run(service(render, "rolling"), "smoke-test.sh", "http://127.0.0.1:9", expect=1)
    assert "GET /health: no answer (curl: (7)" in proc.stderr
