"""deploy/scripts against a real Kubernetes API server (scripts/cluster.sh; tests/kube.py).

kube-apiserver, kube-controller-manager and kube-scheduler at the release pinned in
tests/cluster/go.mod run on loopback; kwok plays the kubelets (pods become Running and Ready, a
Job's pods succeed). Every test gets a namespace of its own (`--namespace`), so tests run in
parallel on one cluster. What the tests read back comes from the server: images, replica counts,
revisions, selectors and route weights. The smoke gates run for real: SMOKE_URL points them at the
rendered service of the same language running natively (kwok pods serve nothing).

Failures are produced for real where the server can produce them: a ResourceQuota that forbids
the new pods (a rollout or a migration that never finishes), a DEPLOY_ERROR_CHECK that fails, a
smoke URL that answers 404. The one stand-in is GatewayAcceptor (tests/kube.py): no Gateway
controller runs here, so the tests that wait for a route's Accepted condition play its status.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from helpers import Project, run
from kube import GatewayAcceptor, Watch
from test_update import NEW, commit_all, copier_cli, template_repo  # noqa: F401 (a fixture)

from extensions.facts import FACTS
from extensions.validators import SLUG_MAX

IMAGE_A = "ghcr.io/my-org/my-service@sha256:" + "a" * 64
IMAGE_B = "ghcr.io/my-org/my-service@sha256:" + "b" * 64
IMAGE_C = "ghcr.io/my-org/my-service@sha256:" + "c" * 64
SLUG = "my-service"
COMMON_SCRIPTS = {"lib.sh", "config.sh", "deploy.sh", "rollback.sh", "smoke-test.sh", "teardown-preview.sh",
                  "preview-slots.sh"}
STRATEGY_SCRIPTS = {"rolling": {"lib-rolling.sh"},
                    "blue-green": {"lib-blue-green.sh", "switch-colour.sh"},
                    "canary": {"lib-canary.sh", "promote-canary.sh", "abort-canary.sh"}}
# The Deployment that serves after a release, per strategy (blue-green: blue first, then green).
SERVING = {"rolling": SLUG, "blue-green": f"{SLUG}-blue", "canary": f"{SLUG}-stable"}
# Kinds whose objects a release owns; a redeploy of the running release must change none of them.
OWNED = "deployments,services,configmaps,jobs,serviceaccounts,poddisruptionbudgets,networkpolicies," \
        "horizontalpodautoscalers,httproutes"


def secret_keys(language: str) -> list[str]:
    """The keys of the platform-created Secret: the service's variables and the migration role's."""
    facts = FACTS[language]
    return [*facts["secret_env"], *facts["migration_secret_keys"].values()]


class Release:
    """One render's deploy/scripts, run against the cluster in a namespace of this test's own."""

    def __init__(self, cluster, project, namespace: str, smoke_url: str):
        self.cluster, self.project, self.namespace, self.smoke_url = cluster, project, namespace, smoke_url
        self.secret = (f"{SLUG}-secrets", secret_keys(project.language))

    def platform_namespace(self) -> None:
        """What the platform provides before a first deploy: the namespace and, where the pods read
        one, the Secret."""
        self.cluster.create_namespace(self.namespace, self.secret if self.secret[1] else None)

    def run(self, script: str, *args: str, expect: int | None = 0, **env: str):
        if "--namespace" not in args:
            args = (*args, "--namespace", self.namespace)
        return self.cluster.script(self.project, script, *args, expect=expect,
                                   **{"SMOKE_URL": self.smoke_url, **env})

    def deploy(self, image: str, *args: str, env: str = "staging", expect: int | None = 0, **extra: str):
        return self.run("deploy.sh", "--env", env, "--image", image, *args, expect=expect, **extra)

    # read back ------------------------------------------------------------------------------------
    def image(self, deployment: str) -> str:
        return self.cluster.image(deployment, self.namespace)

    def replicas(self, deployment: str) -> int:
        return self.cluster.replicas(deployment, self.namespace)

    def colour(self, service: str = SLUG) -> str:
        return self.cluster.selector_colour(service, self.namespace)

    def weights(self) -> list[int]:
        return self.cluster.weights(SLUG, self.namespace)

    def specs(self) -> dict[str, str]:
        """What each owned object asks for, as the server keeps it: everything but its metadata and
        status. (Not metadata.generation: a Deployment's also counts annotation updates, such as
        kubectl's last-applied record, which start no rollout.)"""
        items = json.loads(self.cluster.kubectl("get", OWNED, "--namespace", self.namespace, "-o", "json").stdout)
        return {f"{o['kind']}/{o['metadata']['name']}": json.dumps(
            {k: v for k, v in o.items() if k not in {"metadata", "status"}}, sort_keys=True)
            for o in items["items"]}

    def watch_weights(self) -> Watch:
        return Watch(self.cluster, "httproute", SLUG, self.namespace,
                     lambda route: str(route["spec"]["rules"][0]["backendRefs"][1]["weight"]))

    def quota_pods(self, pods: int) -> None:
        """A ResourceQuota: at most PODS pods in the namespace; the API server refuses the next one."""
        self.cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=json.dumps({
            "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "test-pods", "namespace": self.namespace},
            "spec": {"hard": {"pods": str(pods)}}}))


@pytest.fixture
def namespaces(cluster):
    """namespaces(prefix) -> a fresh namespace name; each is deleted after the test."""
    made: list[str] = []

    def _new(prefix: str = SLUG) -> str:
        made.append(cluster.namespace_name(prefix))
        return made[-1]

    yield _new
    for name in made:
        cluster.delete_namespace(name)


@pytest.fixture
def release(cluster, running_service, namespaces):
    """release(project) -> a Release in a new namespace, smoke-testing the running service."""

    def _release(project, prefix: str = SLUG) -> Release:
        return Release(cluster, project, namespaces(prefix), running_service(project.language))

    return _release


def service(render, strategy: str, language: str = "node", **answers):
    return render(language=language, deployment_strategy=strategy, **answers)


def assert_redeploy_changes_nothing(rel: Release, image: str, env: str = "staging"):
    before = rel.specs()
    proc = rel.deploy(image, env=env)
    # The server's objects, not kubectl's words: client-side apply reports a PodDisruptionBudget as
    # "configured" on every run (its selector's patch strategy is replace), a no-op on the server.
    assert rel.specs() == before, proc.stderr
    assert "created" not in proc.stdout, proc.stdout


# ------------------------------------------------------------------------------------------------
# Every render: the manifests against the server, then a release's whole life
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


def apply_overlay(cluster, project, env: str, namespace: str) -> str:
    """Server-side apply of an overlay's objects into NAMESPACE -> kubectl's stderr (warnings)."""
    objects = copy.deepcopy(project.k8s_objects(env))  # the render's build is shared: never change it
    for obj in objects:
        if obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = namespace
    proc = cluster.kubectl("apply", "--server-side", "--field-manager=tests", "-f", "-",
                           stdin=yaml.safe_dump_all(objects))
    return proc.stderr


@pytest.mark.parametrize("env", ["staging", "production", "preview"])
def test_overlay_is_accepted_under_restricted_pod_security(project, cluster, namespaces, env):
    """Server-side apply with Pod Security `restricted` enforced and warned: no warning, every object
    accepted (CRD schemas and CEL rules of the HTTPRoute too), and the pods of every Deployment and
    of the migration Job admitted: the ReplicaSets reach their replica counts."""
    namespace = namespaces(f"{SLUG}-{env}")
    cluster.create_namespace(namespace, pod_security=("enforce", "warn", "audit"))
    warnings = apply_overlay(cluster, project, env, namespace)
    assert "Warning" not in warnings and "warning" not in warnings, warnings
    for obj in project.k8s_objects(env):
        kind, name = obj["kind"], obj["metadata"]["name"]
        replicas = obj["spec"].get("replicas", 1) if kind == "Deployment" else 0
        if replicas:  # admission lets the pods be created (readiness is the release tests' part)
            cluster.kubectl("wait", f"--for=jsonpath={{.status.readyReplicas}}={replicas}", f"deployment/{name}",
                            "--namespace", namespace, "--timeout=90s")
        if kind == "Job":
            cluster.kubectl("wait", "--for=condition=Complete", f"job/{name}", "--namespace", namespace,
                            "--timeout=90s")
    events = cluster.kubectl("get", "events", "--namespace", namespace, "--field-selector",
                             "reason=FailedCreate", "-o", "name").stdout
    assert not events.strip(), "the server refused a pod: " + cluster.kubectl(
        "get", "events", "--namespace", namespace, "--field-selector", "reason=FailedCreate").stdout


def test_release_life_on_the_server(project, release, cluster):
    """First release, a redeploy that changes nothing, a second release in the strategy's shape,
    then rollback.sh back to the first image."""
    rel = release(project)
    if FACTS[project.language]["has_database"]:
        rel.platform_namespace()
    rel.deploy(IMAGE_A)
    serving = SERVING[project.strategy]
    assert rel.image(serving) == IMAGE_A and cluster.ready_pods(serving, rel.namespace) == rel.replicas(serving)
    assert_redeploy_changes_nothing(rel, IMAGE_A)

    watch = rel.watch_weights() if project.strategy == "canary" else None
    proc = rel.deploy(IMAGE_B)
    if project.strategy == "rolling":
        assert rel.image(SLUG) == IMAGE_B and cluster.revision(SLUG, rel.namespace) == 2
    elif project.strategy == "blue-green":
        assert rel.colour() == "green" and rel.colour(f"{SLUG}-preview") == "blue"
        assert rel.image(f"{SLUG}-green") == IMAGE_B
        assert rel.image(f"{SLUG}-blue") == IMAGE_A and cluster.ready_pods(f"{SLUG}-blue", rel.namespace) == 2, \
            "the old colour keeps running for an instant rollback"
    else:
        steps = str(project.recorded_answers["canary_steps"]).split(",")
        assert watch.values() == ["0", *steps, "0"], "each step on the server, then all traffic to stable"
        assert rel.image(f"{SLUG}-stable") == IMAGE_B and rel.replicas(f"{SLUG}-canary") == 0
        assert rel.weights() == [100, 0]
    if FACTS[project.language]["has_database"]:
        job = cluster.get("job", f"{SLUG}-migrate", rel.namespace)
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_B
        assert any(c["type"] == "Complete" for c in job["status"]["conditions"])
        assert proc.stderr.index("job/my-service-migrate complete") < proc.stderr.index("waiting for deployment/")
    assert_redeploy_changes_nothing(rel, IMAGE_B)

    rel.run("rollback.sh", "--env", "staging")
    if project.strategy == "blue-green":
        assert rel.colour() == "blue" and rel.image(f"{SLUG}-blue") == IMAGE_A
    else:
        assert rel.image(serving) == IMAGE_A
    if project.strategy == "canary":  # with a canary in progress, rollback.sh aborts it
        hold_a_canary_at_ten_percent(rel, IMAGE_C)
        proc = rel.run("rollback.sh", "--env", "staging")
        assert "canary aborted" in proc.stderr
        assert rel.weights() == [100, 0] and rel.replicas(f"{SLUG}-canary") == 0
        assert rel.image(serving) == IMAGE_A


def hold_a_canary_at_ten_percent(rel: Release, image: str) -> None:
    """The state a deploy killed at the first step leaves: canary on IMAGE, one pod, 10% of traffic."""
    rel.cluster.kubectl("set", "image", f"deployment/{SLUG}-canary", f"app={image}", "--namespace", rel.namespace)
    rel.cluster.kubectl("scale", f"deployment/{SLUG}-canary", "--replicas=1", "--namespace", rel.namespace)
    rel.cluster.kubectl("patch", "httproute", SLUG, "--namespace", rel.namespace, "--type=json", "--patch",
                        '[{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":10},'
                        '{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":90}]')


def test_dry_run_without_a_cluster_prints_the_plan(project, cluster, tmp_path):
    proc = cluster.script(project, "deploy.sh", "--env", "staging", "--image", IMAGE_A, "--dry-run",
                          KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    assert "dry-run without a cluster" in proc.stderr
    plan = proc.stdout
    serving = SERVING[project.strategy]
    assert f"name: {serving}" in plan and f"image: {IMAGE_A}" in plan, "the release kustomization is shown"
    apply = plan.index("--selector 'app.kubernetes.io/component!=migration'")
    assert plan.index(f"rollout status deployment/{serving}") > apply
    assert "port-forward" in plan
    if FACTS[project.language]["has_database"]:
        assert plan.index("--selector app.kubernetes.io/component=migration") < apply
    else:
        assert "component=migration\n" not in plan


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
def test_bad_arguments_are_refused_clearly(render, cluster, args, message):
    proc = cluster.script(service(render, "rolling"), "deploy.sh", *args, expect=1)
    assert message in proc.stderr
    assert "+ kubectl" not in proc.stderr, "nothing reaches the cluster"


def test_missing_kubectl_is_named(render, cluster, tmp_path):
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    for tool in ("bash", "dirname", "basename", "mktemp", "rm", "cat", "env"):
        (bare / tool).symlink_to(shutil.which(tool))
    proc = cluster.script(service(render, "rolling"), "deploy.sh", "--env", "staging", "--image", IMAGE_A,
                          expect=1, PATH=str(bare))
    assert "kubectl is required but not on PATH" in proc.stderr


def test_no_context_and_an_unreachable_server_stop_a_real_deploy(render, cluster, tmp_path):
    project = service(render, "rolling")
    proc = cluster.script(project, "deploy.sh", "--env", "staging", "--image", IMAGE_A, expect=1,
                          KUBECONFIG=str(tmp_path / "none"))
    assert "no kubectl context" in proc.stderr
    # the cluster's own kubeconfig, its server moved to a port where nothing listens
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
    moved = tmp_path / "kubeconfig"
    moved.write_text(yaml.safe_dump(config))
    proc = cluster.script(project, "deploy.sh", "--env", "staging", "--image", IMAGE_A, expect=1,
                          KUBECONFIG=str(moved), REQUEST_TIMEOUT="3s")
    assert "the cluster did not answer within 3s" in proc.stderr


def test_an_unknown_kube_context_is_named(render, cluster):
    proc = cluster.script(service(render, "rolling"), "deploy.sh", "--env", "staging", "--image", IMAGE_A,
                          expect=1, KUBE_CONTEXT="prod-eu")
    assert "context 'prod-eu' (KUBE_CONTEXT) is not in the kubeconfig" in proc.stderr


def test_a_rollout_timeout_fails_the_first_deploy_clearly(render, release):
    rel = release(service(render, "rolling"))
    rel.platform_namespace()
    rel.quota_pods(0)
    proc = rel.deploy(IMAGE_A, expect=1, ROLLOUT_TIMEOUT="5s")
    assert f"deployment/{SLUG} did not become ready within 5s" in proc.stderr
    assert "rollout undo" not in proc.stderr, "nothing to go back to on a first deploy"


# ------------------------------------------------------------------------------------------------
# Rolling
# ------------------------------------------------------------------------------------------------
def test_rolling_deploy_keeps_the_autoscalers_replica_count(render, release):
    rel = release(service(render, "rolling"))
    rel.deploy(IMAGE_A, env="production")
    rel.cluster.kubectl("scale", f"deployment/{SLUG}", "--replicas=5", "--namespace", rel.namespace)
    rel.deploy(IMAGE_B, env="production")
    assert rel.replicas(SLUG) == 5 and rel.image(SLUG) == IMAGE_B


def test_rolling_failed_rollout_is_undone(render, release):
    rel = release(service(render, "rolling"))
    rel.deploy(IMAGE_A)
    rel.quota_pods(2)  # the two running pods: maxSurge's new pod is refused, the rollout never ends
    proc = rel.deploy(IMAGE_B, expect=1, ROLLOUT_TIMEOUT="5s")
    assert "+ kubectl rollout undo deployment/my-service" in proc.stderr
    assert "traffic is back on the last good version" in proc.stderr
    assert rel.image(SLUG) == IMAGE_A and rel.cluster.revision(SLUG, rel.namespace) == 3


def test_rolling_rollback_to_a_revision(render, release):
    rel = release(service(render, "rolling"))
    for image in (IMAGE_A, IMAGE_B, IMAGE_C):
        rel.deploy(image)
    rel.run("rollback.sh", "--env", "staging")
    assert rel.image(SLUG) == IMAGE_B
    proc = rel.run("rollback.sh", "--env", "staging", "--revision", "1")
    assert rel.image(SLUG) == IMAGE_A and "--to-revision=1" in proc.stderr


# ------------------------------------------------------------------------------------------------
# Blue-green
# ------------------------------------------------------------------------------------------------
def test_blue_green_third_release_goes_to_blue_and_leaves_green_alone(render, release):
    rel = release(service(render, "blue-green"))
    rel.deploy(IMAGE_A)
    rel.deploy(IMAGE_B)
    green = rel.specs()[f"Deployment/{SLUG}-green"]
    proc = rel.deploy(IMAGE_C)
    assert rel.colour() == "blue", "green was live, so blue was idle"
    assert rel.image(f"{SLUG}-blue") == IMAGE_C
    assert rel.specs()[f"Deployment/{SLUG}-green"] == green, "the live colour is never touched"
    err = proc.stderr
    assert err.index("waiting for deployment/my-service-blue") < err.index("smoke test of service/my-service-preview") \
        < err.index("+ kubectl patch service my-service ")


def test_blue_green_dry_run_plans_against_the_clusters_live_colour(render, release):
    rel = release(service(render, "blue-green"))
    rel.deploy(IMAGE_A)
    rel.deploy(IMAGE_B)  # green is live
    before = rel.specs()
    proc = rel.deploy(IMAGE_C, "--dry-run")
    assert rel.specs() == before
    assert f"name: {SLUG}-blue" in proc.stdout and f"image: {IMAGE_C}" in proc.stdout
    assert "patch service my-service --type=merge --patch '{\"spec\":{\"selector\":{\"colour\":\"blue\"}}}'" \
        in proc.stdout


@pytest.mark.parametrize("language", ["node", "go", "django"])
def test_blue_green_smoke_failure_never_switches(render, release, language):
    rel = release(service(render, "blue-green", language))
    rel.platform_namespace()
    rel.deploy(IMAGE_A)
    # the real service, under a path it does not serve: every endpoint answers 404
    proc = rel.deploy(IMAGE_B, expect=1, SMOKE_URL=rel.smoke_url + "/not-the-service")
    assert "GET /health: HTTP " in proc.stderr and "live traffic stays on blue" in proc.stderr
    assert rel.colour() == "blue" and rel.colour(f"{SLUG}-preview") == "green"
    assert rel.image(f"{SLUG}-blue") == IMAGE_A


def test_blue_green_failed_gate_after_the_switch_switches_back(render, release):
    rel = release(service(render, "blue-green"))
    rel.deploy(IMAGE_A)
    check = 'test "$SERVICE" = my-service && case "$SELECTOR" in *colour=green) false;; esac'
    proc = rel.deploy(IMAGE_B, expect=1, DEPLOY_ERROR_CHECK=check)
    assert "DEPLOY_ERROR_CHECK failed" in proc.stderr and "traffic is back on the last good version" in proc.stderr
    assert rel.colour() == "blue" and rel.colour(f"{SLUG}-preview") == "green"


def test_blue_green_rollback_and_scale_down(render, release):
    rel = release(service(render, "blue-green"))
    rel.deploy(IMAGE_A)
    rel.deploy(IMAGE_B)
    rel.run("switch-colour.sh", "--env", "staging", "--scale-down-idle")
    assert rel.replicas(f"{SLUG}-blue") == 0 and rel.colour() == "green"
    proc = rel.run("rollback.sh", "--env", "staging")
    assert "blue rests at 0 pods: scaling it to 2 first" in proc.stderr
    assert rel.colour() == "blue" and rel.cluster.ready_pods(f"{SLUG}-blue", rel.namespace) == 2
    assert rel.image(f"{SLUG}-blue") == IMAGE_A
    rel.run("rollback.sh", "--env", "staging", "--revision", "2", expect=1)
    rel.run("switch-colour.sh", "--env", "staging", "--to", "green")
    assert rel.colour() == "green"


# ------------------------------------------------------------------------------------------------
# Canary
# ------------------------------------------------------------------------------------------------
def test_canary_pods_follow_the_weight(render, release):
    rel = release(service(render, "canary", canary_steps="5,50,100"))
    rel.deploy(IMAGE_A)
    watch = Watch(rel.cluster, "deployment", f"{SLUG}-canary", rel.namespace, lambda d: str(d["spec"]["replicas"]))
    rel.deploy(IMAGE_B)
    # 2 stable pods in staging: at least one canary pod, 2 at 100%, then 0 after the promotion
    assert watch.values() == ["0", "1", "2", "0"]


@pytest.mark.parametrize("language", ["node", "go", "django"])
def test_canary_failed_gate_at_the_second_step_aborts(render, release, language):
    rel = release(service(render, "canary", language))
    rel.platform_namespace()
    rel.deploy(IMAGE_A)
    watch = rel.watch_weights()
    proc = rel.deploy(IMAGE_B, expect=1, DEPLOY_ERROR_CHECK='test "${WEIGHT:-0}" -lt 25')
    assert "gate failed at 25%" in proc.stderr
    assert watch.values() == ["0", "10", "25", "0"], "abort sets the canary weight to 0"
    assert rel.weights() == [100, 0]
    assert rel.replicas(f"{SLUG}-canary") == 0 and rel.image(f"{SLUG}-stable") == IMAGE_A


def test_canary_failing_smoke_test_never_gets_traffic(render, release):
    rel = release(service(render, "canary"))
    rel.deploy(IMAGE_A)
    watch = rel.watch_weights()
    proc = rel.deploy(IMAGE_B, expect=1, SMOKE_URL=rel.smoke_url + "/not-the-service")
    assert "smoke test before taking any traffic" in proc.stderr
    assert watch.values() == ["0"], "no weight above 0 was ever set"
    assert rel.replicas(f"{SLUG}-canary") == 0


def test_canary_waits_for_the_gateway_to_accept_the_route(render, release):
    rel = release(service(render, "canary"))
    with GatewayAcceptor(rel.cluster, rel.namespace, accept=True):
        proc = rel.deploy(IMAGE_A, REQUIRE_ROUTE_ACCEPTED="true")
    assert "deployed" in proc.stderr
    with GatewayAcceptor(rel.cluster, rel.namespace, accept=False):
        watch = rel.watch_weights()
        proc = rel.deploy(IMAGE_B, expect=1, REQUIRE_ROUTE_ACCEPTED="true", ROUTE_TIMEOUT="3")
    assert "was not accepted by its Gateway" in proc.stderr and "httproute-patch.yaml" in proc.stderr
    assert watch.values() == ["0"]


def test_canary_left_over_is_aborted_before_a_new_release(render, release):
    rel = release(service(render, "canary"))
    rel.deploy(IMAGE_A)
    rel.deploy(IMAGE_B, expect=1, DEPLOY_ERROR_CHECK="false")
    hold_a_canary_at_ten_percent(rel, IMAGE_B)
    proc = rel.deploy(IMAGE_B)
    assert "aborting it first" in proc.stderr
    assert rel.image(f"{SLUG}-stable") == IMAGE_B and rel.weights() == [100, 0]


def test_canary_promote_abort_and_rollback_scripts(render, release):
    rel = release(service(render, "canary"))
    rel.deploy(IMAGE_A)
    rel.deploy(IMAGE_B)
    # rollback with no canary in progress: stable goes back a revision
    rel.run("rollback.sh", "--env", "staging")
    assert rel.image(f"{SLUG}-stable") == IMAGE_A
    # a canary held at its first step (the gate fails; abort put the weight back), then promoted
    rel.deploy(IMAGE_C, expect=1, DEPLOY_ERROR_CHECK="false")
    rel.run("abort-canary.sh", "--env", "staging")
    assert rel.weights() == [100, 0] and rel.replicas(f"{SLUG}-canary") == 0
    rel.run("promote-canary.sh", "--env", "staging")
    assert rel.image(f"{SLUG}-stable") == IMAGE_C and rel.weights() == [100, 0]
    # the revision that holds IMAGE_A, as `kubectl rollout history` tells it: the server renumbered
    # it when the first rollback brought IMAGE_A back (revision 1 is gone)
    sets = json.loads(rel.cluster.kubectl("get", "replicasets", "--namespace", rel.namespace, "-o", "json",
                                          "--selector", "track=stable").stdout)["items"]
    revision = next(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in sets
                    if rs["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_A)
    assert revision != "1"
    rel.run("rollback.sh", "--env", "staging", "--revision", revision)
    assert rel.image(f"{SLUG}-stable") == IMAGE_A


# ------------------------------------------------------------------------------------------------
# Database migrations (Django)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_migrations_complete_before_any_traffic_moves(render, release, strategy):
    rel = release(service(render, strategy, language="django"))
    rel.platform_namespace()
    rel.deploy(IMAGE_A)
    first = rel.cluster.get("job", f"{SLUG}-migrate", rel.namespace)["metadata"]["uid"]
    proc = rel.deploy(IMAGE_B)
    job = rel.cluster.get("job", f"{SLUG}-migrate", rel.namespace)
    assert job["metadata"]["uid"] != first, "the previous run's Job (immutable) was replaced"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE_B and container["command"] == ["python", "manage.py", "migrate", "--noinput"]
    err = proc.stderr
    moved = min(i for i in (err.find("--selector 'app.kubernetes.io/component!=migration'"),
                            err.find("+ kubectl scale"), err.find("+ kubectl patch")) if i >= 0)
    assert err.index("job/my-service-migrate complete") < moved


def test_a_migration_that_never_finishes_stops_the_release(render, release):
    rel = release(service(render, "blue-green", language="django"))
    rel.platform_namespace()
    rel.deploy(IMAGE_A)
    rel.quota_pods(2)  # blue's two pods: the migration Job's pod is refused
    before = {k: v for k, v in rel.specs().items() if k.startswith(("Deployment/", "Service/"))}
    proc = rel.deploy(IMAGE_B, expect=1, MIGRATION_TIMEOUT="5")
    assert "did not finish within 5s; no traffic moved" in proc.stderr
    after = {k: v for k, v in rel.specs().items() if k.startswith(("Deployment/", "Service/"))}
    assert after == before and rel.colour() == "blue"


def test_a_missing_secret_is_named_before_anything_is_applied(render, release):
    rel = release(service(render, "rolling", language="django"))
    proc = rel.deploy(IMAGE_A, expect=1)
    assert f"namespace {rel.namespace} does not exist, and the pods need the Secret" in proc.stderr
    rel.cluster.create_namespace(rel.namespace)
    proc = rel.deploy(IMAGE_A, expect=1)
    assert f"Secret my-service-secrets is missing in namespace {rel.namespace}" in proc.stderr
    assert "DJANGO_SECRET_KEY DATABASE_URL MIGRATION_DATABASE_URL" in proc.stderr
    # a Secret from before the migration role: the key the Job needs is named before anything moves
    rel.cluster.kubectl("create", "secret", "generic", f"{SLUG}-secrets", "--namespace", rel.namespace,
                        "--from-literal=DJANGO_SECRET_KEY=x", "--from-literal=DATABASE_URL=y")
    proc = rel.deploy(IMAGE_A, expect=1)
    assert f"Secret {SLUG}-secrets in namespace {rel.namespace} lacks the keys MIGRATION_DATABASE_URL" in proc.stderr
    assert not rel.cluster.names(OWNED, rel.namespace, selector=f"app.kubernetes.io/name={SLUG}"), \
        "nothing was applied"


def test_a_missing_namespace_is_created_restricted(render, release):
    rel = release(service(render, "rolling"))
    rel.deploy(IMAGE_A)
    labels = rel.cluster.get("namespace", rel.namespace, "")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# ------------------------------------------------------------------------------------------------
# Previews
# ------------------------------------------------------------------------------------------------
def as_credential(cluster, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl ARGS with another kubeconfig (a CI credential), not the admin's."""
    return subprocess.run([str(cluster.bin / "kubectl"), *args], env=cluster.env(KUBECONFIG=str(kubeconfig)),
                          text=True, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_previews_run_in_a_pool_of_namespaces_with_a_credential_bound_to_them(
        render, cluster, running_service, strategy, tmp_path):
    slug = f"pv-{strategy[0]}{os.urandom(3).hex()}"  # a pool no other test uses
    project = service(render, strategy, project_slug=slug)
    ci, pool = f"{slug}-ci", [f"{slug}-preview-1", f"{slug}-preview-2"]
    cluster.create_namespace(ci)
    cluster.kubectl("create", "serviceaccount", "previews", "--namespace", ci)
    try:
        # The platform, once, as cluster admin; again changes nothing.
        for _ in range(2):
            cluster.script(project, "preview-slots.sh", "create-pool", "--slots", "2",
                           "--serviceaccount", f"{ci}:previews")
        for namespace in pool:
            labels = cluster.get("namespace", namespace, "")["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
            assert labels["app.kubernetes.io/part-of"] == slug
        kubeconfig = cluster.token_kubeconfig(tmp_path / "previews.kubeconfig", "previews", ci)
        # What the API server lets the preview credential do: its pool, nothing else.
        for args, allowed in [(("create", "deployments", "--namespace", pool[1]), "yes"),
                              (("create", "namespaces"), "no"),
                              (("delete", f"namespace/{pool[0]}"), "no"),
                              (("create", "deployments", "--namespace", f"{slug}-staging"), "no"),
                              (("create", "rolebindings", "--namespace", pool[0]), "no")]:
            assert as_credential(cluster, kubeconfig, "auth", "can-i", *args).stdout.strip() == allowed, args
        ci_env = {"KUBECONFIG": str(kubeconfig), "PREVIEW_SLOTS": "2", "SMOKE_URL": running_service("node")}

        def claim(number: str, expect: int = 0):
            return cluster.script(project, "preview-slots.sh", "claim", "--pr", number, expect=expect, **ci_env)

        assert claim("11").stdout == f"{pool[0]}\n"
        assert claim("22").stdout == f"{pool[1]}\n"
        assert claim("11").stdout == f"{pool[0]}\n", "a new push keeps its namespace"
        full = claim("33", expect=1)
        assert f"no free preview namespace for pull request 33; held: {pool[0]} by #11, {pool[1]} by #22." \
            in full.stderr
        assert not full.stdout

        cluster.script(project, "deploy.sh", "--env", "preview", "--image", IMAGE_A, "--namespace", pool[0], **ci_env)
        assert cluster.ready_pods(SERVING[strategy].replace(SLUG, slug), pool[0]) == 1
        assert not cluster.names("httproutes", pool[0]), "a preview gets no route on the shared Gateway"
        listing = cluster.script(project, "preview-slots.sh", "list", **ci_env).stdout
        assert listing == f"{pool[0]}\t#11\n{pool[1]}\t#22\n"

        # Closing the pull request deletes its preview and frees the namespace; what the platform
        # put there stays.
        cluster.kubectl("create", "secret", "generic", "platform-owned", "--namespace", pool[0], "--from-literal=k=v")
        cluster.script(project, "teardown-preview.sh", "--pr", "11", **ci_env)
        assert not cluster.names(OWNED, pool[0], selector=f"app.kubernetes.io/instance={slug}-preview")
        assert cluster.get("namespace", pool[0], "")["status"]["phase"] == "Active"
        assert cluster.names("secrets", pool[0]) >= {"platform-owned"}
        assert claim("33").stdout == f"{pool[0]}\n"
        again = cluster.script(project, "teardown-preview.sh", "--pr", "11", **ci_env)
        assert "pull request 11 holds no preview namespace: nothing to delete" in again.stderr
    finally:
        for namespace in (ci, *pool):
            cluster.delete_namespace(namespace)


def test_preview_namespaces_outside_the_pool_are_refused(render, cluster, tmp_path):
    project = service(render, "rolling")
    proc = cluster.script(project, "deploy.sh", "--env", "preview", "--image", IMAGE_A, "--namespace",
                          f"{SLUG}-preview-98", expect=1)
    assert f"preview namespace {SLUG}-preview-98 does not exist: the platform creates the pool once" in proc.stderr
    assert not cluster.kubectl("get", "namespace", f"{SLUG}-preview-98", "--ignore-not-found", "-o", "name").stdout
    for namespace in (f"{SLUG}-pr-12", f"{SLUG}-preview-100", f"{SLUG}-preview-0", f"x{SLUG}-preview-1"):
        proc = cluster.script(project, "deploy.sh", "--env", "preview", "--image", IMAGE_A, "--dry-run",
                              "--namespace", namespace, KUBECONFIG=str(tmp_path / "none"), expect=1)
        assert f"a preview namespace is {SLUG}-preview-<slot 1 to 99>, got '{namespace}'" in proc.stderr
    for args, message in [(("claim", "--pr", "7", "--slots", "100"), "must be 1 to 99, got '100'"),
                          (("claim", "--pr", "abc"), "--pr needs the pull request number, got 'abc'"),
                          (("create-pool",), "create-pool needs one of --serviceaccount"),
                          (("remove",), "unknown command 'remove'")]:
        proc = cluster.script(project, "preview-slots.sh", *args, expect=1)
        assert message in proc.stderr, proc.stderr


# ------------------------------------------------------------------------------------------------
# smoke-test.sh against a local HTTP server
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


def test_smoke_test_passes_the_rendered_service(render, cluster, running_service):
    for language in ("node", "go", "django"):
        proc = cluster.script(service(render, "rolling", language), "smoke-test.sh", running_service(language) + "/")
        assert "passed" in proc.stdout


@pytest.mark.parametrize("path,status,body,reported", [
    ("/ready", 503, None, "GET /ready: HTTP 503"),
    ("/metrics", 200, "not prometheus", "GET /metrics: 200, but the body does not match"),
    ("/health", 200, '{"status":"degraded"}', "GET /health: 200, but the body does not match"),
])
def test_smoke_test_fails_on_a_broken_endpoint(render, cluster, contract_server, path, status, body, reported):
    url, statuses, bodies = contract_server
    statuses[path] = status
    if body is not None:
        bodies[path] = body
    proc = cluster.script(service(render, "rolling"), "smoke-test.sh", url, expect=1, SMOKE_ATTEMPTS="2")
    assert reported in proc.stderr and "after 2 attempt(s)" in proc.stderr


def test_smoke_test_reports_an_unreachable_service(render, cluster):
    proc = cluster.script(service(render, "rolling"), "smoke-test.sh", "http://127.0.0.1:9", expect=1)
    assert "GET /health: no answer (curl: (7)" in proc.stderr


# ------------------------------------------------------------------------------------------------
# Strategy conversion: `copier update --data deployment_strategy=...`, then deploy into the same
# namespace: the new strategy's objects serve, the old strategy's are pruned, nothing by hand.
# ------------------------------------------------------------------------------------------------
DEPLOYMENTS = {"rolling": {SLUG}, "blue-green": {f"{SLUG}-blue", f"{SLUG}-green"},
               "canary": {f"{SLUG}-stable", f"{SLUG}-canary"}}
SERVICES = {"rolling": {SLUG}, "blue-green": {SLUG, f"{SLUG}-preview"}, "canary": {SLUG, f"{SLUG}-canary"}}
# The live Service's selector key each strategy adds, which the other strategies' pods lack.
KEYS = {"rolling": {}, "blue-green": {"colour": "blue"}, "canary": {"track": "stable"}}
# Chains of strategies a deployed repository is converted through (and the language it is in).
CHAINS = [("rolling", "blue-green", "rolling", "node"), ("canary", "rolling", "django"),
          ("rolling", "canary", "blue-green", "go")]


def ready_endpoints(events: list[tuple[str, int]]) -> list[int]:
    """From a watch of a Service's EndpointSlices ((slice, ready endpoints) per event): the Service's
    ready endpoints after each event."""
    slices: dict[str, int] = {}
    counts = []
    for name, ready in events:
        slices[name] = ready
        counts.append(sum(slices.values()))
    return counts


@pytest.mark.parametrize("chain", CHAINS, ids=["-to-".join(c[:-1]) for c in CHAINS])
def test_strategy_conversion_deploys_into_the_same_namespace(template_repo, tmp_path, cluster, running_service,
                                                              namespaces, chain):
    *strategies, language = chain
    repo = template_repo.service(NEW, language, strategies[0], tmp_path / "service")
    rel = Release(cluster, Project(repo, {"language": language, "deployment_strategy": strategies[0]}),
                  namespaces(), running_service(language))
    if FACTS[language]["has_database"]:
        rel.platform_namespace()
    rel.deploy(IMAGE_A)
    rel.deploy(IMAGE_B)
    # an object of the team's own with the service's name label: no strategy's, never pruned
    cluster.kubectl("create", "service", "clusterip", f"{SLUG}-admin", "--tcp=8080:8080",
                    "--namespace", rel.namespace)
    cluster.kubectl("label", "service", f"{SLUG}-admin", f"app.kubernetes.io/name={SLUG}", "--namespace",
                    rel.namespace)
    image = IMAGE_B
    for old, new in zip(strategies, strategies[1:]):
        copier_cli(repo, "update", "--trust", "--defaults", "--data", f"deployment_strategy={new}")
        commit_all(repo, f"Convert to {new}")
        rel.project = Project(repo, {"language": language, "deployment_strategy": new})
        endpoints = Watch(cluster, "endpointslices", None, rel.namespace,
                          lambda es: (es["metadata"]["name"], sum(
                              1 for e in es.get("endpoints") or [] if e["conditions"].get("ready"))),
                          selector=f"kubernetes.io/service-name={SLUG}")
        image = IMAGE_C if image != IMAGE_C else IMAGE_A
        proc = rel.deploy(image)
        err = proc.stderr

        counts = ready_endpoints(endpoints.stop())
        assert counts and min(counts) > 0, f"{old} to {new}: service/{SLUG} lost every ready endpoint: {counts}"
        assert err.index(f"smoke test of service/{SLUG} ") < err.index("left by an earlier strategy"), err
        assert cluster.names("deployments", rel.namespace) == DEPLOYMENTS[new], err
        assert cluster.names("services", rel.namespace) == SERVICES[new] | {f"{SLUG}-admin"}
        selector = cluster.get("service", SLUG, rel.namespace)["spec"]["selector"]
        assert {k: v for k, v in selector.items() if k in ("colour", "track")} == KEYS[new], selector
        serving = SERVING[new]
        assert rel.image(serving) == image and cluster.ready_pods(serving, rel.namespace) == 2
        if old == "canary":  # the route may be the service's entry on the Gateway: kept, and said so
            assert cluster.names("httproutes", rel.namespace) == {SLUG}
            assert f"httproute/{SLUG} (from the canary strategy) still routes" in err
    # the converted repository goes on releasing and rolling back with its last strategy
    rel.deploy(IMAGE_B)
    rel.run("rollback.sh", "--env", "staging")
    serving = {"blue-green": f"{SLUG}-blue"}.get(strategies[-1], SERVING[strategies[-1]])
    assert rel.image(serving) == image


# ------------------------------------------------------------------------------------------------
# Names: the longest slug the template accepts and a one-letter slug make names the server accepts,
# in the namespaces the scripts derive (<slug>-staging, <slug>-production, <slug>-pr-<n>).
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_extreme_slugs_make_names_the_server_accepts(render, cluster, running_service, strategy):
    tag = strategy[0] + os.urandom(2).hex()  # slugs (so namespaces) no other test uses
    longest = (tag + "-" + "x" * SLUG_MAX)[:SLUG_MAX]
    # one letter (YAML's y and n are refused), from letters of this strategy's own: the parallel
    # tests never share a namespace
    letters = {"rolling": "abcdefgh", "blue-green": "ijklmopq", "canary": "rstuvwxz"}[strategy]
    shortest = letters[os.urandom(1)[0] % len(letters)]
    for slug in (longest, shortest):
        project = render(language="django", deployment_strategy=strategy, project_slug=slug)
        secret = (f"{slug}-secrets", secret_keys("django"))
        namespaces = [f"{slug}-production"]  # the longest derived name (staging's is shorter)
        try:
            for env, namespace in zip(("production",), namespaces):
                assert len(namespace) <= 63
                cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
                cluster.create_namespace(namespace, secret)
                cluster.script(project, "deploy.sh", "--env", env, "--image", IMAGE_A,
                               SMOKE_URL=running_service("django"))
                assert cluster.image(SERVING[strategy].replace(SLUG, slug), namespace) == IMAGE_A
            preview = f"{slug}-preview-99"  # the last slot a pool may have: the longest preview name
            assert len(preview) <= 63
            namespaces.append(preview)
            cluster.kubectl("delete", "namespace", preview, "--ignore-not-found", "--wait=true")
            cluster.create_namespace(preview, secret)  # the platform's part (preview-slots.sh create-pool)
            cluster.script(project, "deploy.sh", "--env", "preview", "--image", IMAGE_A, "--namespace", preview,
                           SMOKE_URL=running_service("django"))
        finally:
            for namespace in namespaces:
                cluster.delete_namespace(namespace)
