"""Zero-downtime cutovers: each strategy's choreography, natively, behind nginx, under constant load.

For each language the default render is built once; two versions run side by side (APP_VERSION v1
and v2) behind an nginx that plays the Kubernetes Service (see harness.py), while wrk sends a
steady stream of GET /health through it. Every test asserts that not one request failed (no
non-2xx answer, no socket error, no timeout) and records how many were served.

Phases are short (about a second each) so that the whole set runs in a couple of minutes.
"""

from __future__ import annotations

import time

import pytest

from extensions.validators import parse_steps
from harness import Endpoints, Instance, Load, LoadResult, status_or_none
from helpers import LANGUAGES

pytestmark = pytest.mark.reliability
HOLD = 1.0  # seconds of load in each state of a choreography


@pytest.fixture
def cluster(built_service, workdir):
    """cluster(language) -> (new_instance(version), service); everything stopped afterwards."""
    started: list = []

    def _cluster(language: str):
        built = built_service(language)

        def new_instance(version: str) -> Instance:
            instance = Instance(built.project.path, built.recipe, version, workdir / "logs").start()
            started.append(instance)
            return instance

        service = Endpoints(workdir / "nginx")
        started.append(service)
        return new_instance, service

    yield _cluster
    for thing in reversed(started):
        thing.stop() if isinstance(thing, Endpoints) else thing.kill()


def drain(instance: Instance, service: Endpoints) -> None:
    """What the kubelet does to a pod being replaced: SIGTERM; readiness fails at once, so the
    Service stops routing to it; it serves what it already has, then exits 0."""
    instance.terminate()
    service.settle()
    assert instance.wait_exit() == 0, instance.tail()


def record(record_property, name: str, result: LoadResult, service: Endpoints, **extra) -> None:
    record_property(
        "evidence",
        {
            "drill": name,
            "requests": result.requests,
            "failed": result.failed,
            "seconds": round(result.duration_s, 1),
            "p99_ms": round(result.p99_ms, 1),
            "retried_by_proxy": service.retried(),
            **extra,
        },
    )
    assert result.failed == 0, f"{name}: {result.summary()}"
    assert result.requests > 100, f"{name}: too little load to say anything: {result.summary()}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_rolling_update_then_rollout_undo(cluster, workdir, record_property, language):
    """Rolling (maxSurge 1, maxUnavailable 0): new pod ready first, then the old one drains;
    `rollout undo` is the same dance back to the previous version."""
    new_instance, service = cluster(language)
    v1 = new_instance("v1")
    v1.wait_ready()
    service.start({v1: 1})
    with Load(service.port, workdir) as load:
        time.sleep(HOLD)
        current = v1
        for version in ("v2", "v1"):  # the update, then the rollback
            surge = new_instance(version)
            surge.wait_ready()
            service.select({current: 1, surge: 1})
            service.settle()
            time.sleep(HOLD)
            drain(current, service)
            service.select({surge: 1})
            service.expect_version(version)
            current = surge
            time.sleep(HOLD)
        result = load.stop()
    service.stop()
    record(record_property, f"rolling+undo[{language}]", result, service)


@pytest.mark.parametrize("language", LANGUAGES)
def test_blue_green_switch_then_switch_back(cluster, workdir, record_property, language):
    """Blue-green: green starts idle and is smoke-tested directly (the preview Service); the live
    selector switches atomically; rollback switches back while blue still runs."""
    new_instance, service = cluster(language)
    blue = new_instance("v1")
    blue.wait_ready()
    service.start({blue: 1})
    with Load(service.port, workdir) as load:
        time.sleep(HOLD)
        green = new_instance("v2")
        green.wait_ready()
        for path in ("/health", "/ready", "/health/detailed", "/metrics"):  # smoke test on preview
            assert status_or_none(green.port, path, timeout=5) == 200, path
        service.select({green: 1})
        service.settle()
        service.expect_version("v2")
        time.sleep(HOLD)
        service.select({blue: 1})  # rollback: blue was kept running
        service.settle()
        service.expect_version("v1")
        time.sleep(HOLD)
        drain(green, service)
        time.sleep(HOLD / 2)
        result = load.stop()
    service.stop()
    record(record_property, f"blue-green+switch-back[{language}]", result, service)


def canary_steps(render, language: str) -> list[int]:
    """The template's default steps, read from a canary render's recorded answers."""
    return parse_steps(
        render(language=language, deployment_strategy="canary").recorded_answers["canary_steps"]
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_canary_steps_then_promotion(cluster, workdir, render, record_property, language):
    """Canary: traffic moves to v2 in the template's steps through upstream weights; at 100 the
    stable pods drain. The share each version answered is checked at every step."""
    steps = canary_steps(render, language)
    new_instance, service = cluster(language)
    stable = new_instance("v1")
    stable.wait_ready()
    service.start({stable: 1})
    expected: dict[int, float] = {}  # generation -> canary share
    with Load(service.port, workdir) as load:
        time.sleep(HOLD)
        canary = new_instance("v2")
        canary.wait_ready()
        for step in steps:
            members = {stable: 100 - step, canary: step} if step < 100 else {canary: 100}
            service.select(members)
            expected[service.settle()] = step / 100
            time.sleep(HOLD)
        drain(stable, service)
        service.expect_version("v2")
        result = load.stop()
    service.stop()
    shares = service.shares()
    measured = {}
    for generation, share in expected.items():
        total, by_port = shares.get(generation, (0, {}))
        measured[f"{round(share * 100)}%"] = round(by_port.get(canary.port, 0.0) * 100, 1)
        if total >= 100:  # enough requests in that state to measure a share
            assert abs(by_port.get(canary.port, 0.0) - share) <= 0.05, (generation, share, total, by_port)
    record(record_property, f"canary[{language}]", result, service, canary_share_percent=measured)


@pytest.mark.parametrize("language", LANGUAGES)
def test_canary_abort_rolls_back(cluster, workdir, render, record_property, language):
    """Canary abort (the rollback of a canary): weight back to 0 mid-way, then the canary drains."""
    steps = canary_steps(render, language)
    new_instance, service = cluster(language)
    stable = new_instance("v1")
    stable.wait_ready()
    service.start({stable: 1})
    with Load(service.port, workdir) as load:
        time.sleep(HOLD)
        canary = new_instance("v2")
        canary.wait_ready()
        for step in [s for s in steps if s < 100][:2]:
            service.select({stable: 100 - step, canary: step})
            service.settle()
            time.sleep(HOLD)
        service.select({stable: 100, canary: 0})
        service.settle()
        drain(canary, service)
        service.expect_version("v1")
        time.sleep(HOLD / 2)
        result = load.stop()
    service.stop()
    record(record_property, f"canary-abort[{language}]", result, service)
