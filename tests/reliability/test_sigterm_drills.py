"""SIGTERM drills straight at each service (no proxy to retry anything): requests begun before
SIGTERM are all answered, as are requests sent during SHUTDOWN_DELAY_SECONDS; readiness fails at
once while liveness holds; the listener closes only after the delay; the process exits 0.

"Begun" includes slow clients: connections opened before SIGTERM whose request headers are still
arriving; finished within the delay, they are answered. A request whose headers only complete
after the listener closed is recorded, not asserted: Go's net/http (by design) and others drop it,
and in Kubernetes no request reaches the pod that late (it left the endpoints during the delay).

The contract (docs/architecture.md): on SIGTERM readiness flips to 503 at once; the service keeps
serving for SHUTDOWN_DELAY_SECONDS (while Kubernetes removes the pod from its endpoints); then it
stops accepting, drains in-flight requests up to SHUTDOWN_TIMEOUT_SECONDS, and exits 0.
"""

from __future__ import annotations

import time

import pytest

from harness import DirectLoad, Instance, PartialRequest, status_or_none, wait_for
from helpers import LANGUAGES

pytestmark = pytest.mark.reliability
DELAY = 2.0  # SHUTDOWN_DELAY_SECONDS for the drill
SLOW = 1  # slow clients of each kind (tests/test_contract.py holds 64 of them for /health)


@pytest.mark.parametrize("language", LANGUAGES)
def test_sigterm_answers_every_request_begun_before_it(built_service, workdir, record_property, language):
    built = built_service(language)
    instance = Instance(
        built.project.path,
        built.recipe,
        "v1",
        workdir / "logs",
        SHUTDOWN_DELAY_SECONDS=str(DELAY),
        SHUTDOWN_TIMEOUT_SECONDS="10",
    ).start()
    try:
        instance.wait_ready()
        with DirectLoad(instance.port) as load:
            time.sleep(1.0)
            # requests begun, not finished: some completed during the delay, some after it. Only
            # a few: a gunicorn gthread worker holds a thread per unfinished request (behind an
            # ingress, which reads whole requests first, that costs nothing)
            during_delay = [PartialRequest(instance.port) for _ in range(SLOW)]
            after_close = [PartialRequest(instance.port) for _ in range(SLOW)]
            time.sleep(0.2)
            instance.terminate()
            sigterm = instance.signalled
            # readiness fails at once (well before the delay ends, with room for a loaded CI
            # machine); liveness holds
            wait_for(
                lambda: status_or_none(instance.port, "/ready", timeout=1) == 503,
                DELAY * 0.75,
                "/ready to answer 503 after SIGTERM",
            )
            not_ready_after = time.monotonic() - sigterm
            assert status_or_none(instance.port, "/health") == 200, "liveness must hold while draining"
            answered_during_delay = [request.finish() for request in during_delay]
            # past the delay the listener closes: new connections are refused
            wait_for(
                lambda: status_or_none(instance.port, "/health") is None,
                DELAY + 5,
                "the listener to close after the delay",
            )
            closed_after = time.monotonic() - sigterm
            time.sleep(0.2)
        answered_after_close = [request.finish() for request in after_close]
        code = instance.wait_exit(timeout=20)
    finally:
        instance.kill()

    before = [r for r in load.records if r.at < sigterm]
    early = [r for r in load.records if sigterm <= r.at < sigterm + DELAY / 2]
    failed_before = [r for r in before if r.status != 200]
    failed_early = [r for r in early if r.status != 200]
    record_property(
        "evidence",
        {
            "drill": f"sigterm[{language}]",
            "requests": len(before) + len(early) + SLOW,
            "failed": len(failed_before) + len(failed_early),
            "before_sigterm": len(before),
            "during_delay": len(early),
            "ready_503_after_s": round(not_ready_after, 3),
            "listener_closed_after_s": round(closed_after, 2),
            "refused_after_close": sum(r.status is None for r in load.records if r.at >= sigterm + DELAY),
            "headers_completed_after_close_answered": f"{answered_after_close.count(200)}/{SLOW}",
        },
    )
    assert before and early, "the load ran on both sides of SIGTERM"
    assert not failed_before, f"requests sent before SIGTERM went unanswered: {failed_before[:5]}"
    assert not failed_early, f"requests sent during the shutdown delay failed: {failed_early[:5]}"
    assert answered_during_delay == [200] * SLOW, (
        f"slow requests begun before SIGTERM: {answered_during_delay}"
    )
    assert closed_after >= DELAY * 0.9, (
        f"stopped accepting {closed_after:.2f} s after SIGTERM, before the delay"
    )
    assert code == 0, instance.tail()
