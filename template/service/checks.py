"""Readiness checks of this service's own dependencies. Yours: `copier update` never changes it.

/ready and /health/detailed run every check listed here, next to the database check (which the
template provides for every DATABASES alias). A failing check makes /ready answer 503 with the
check named, so Kubernetes stops routing traffic to this pod until it passes again. List only
what the service cannot serve without: a dependency whose outage it can survive belongs in
/health/detailed dashboards and alerts, not in readiness (or every pod goes unready at once).

Checks are django-health-check objects: use a bundled one or subclass HealthCheck, e.g.

    import dataclasses, datetime, urllib.request
    from health_check.base import HealthCheck
    from health_check.checks import Cache
    from health_check.exceptions import ServiceUnavailable

    @dataclasses.dataclass
    class PaymentsApi(HealthCheck):
        name = "payments-api"
        timeout = datetime.timedelta(seconds=1)

        def run(self) -> None:
            try:
                urllib.request.urlopen("http://payments/health", timeout=1)
            except OSError as exc:
                raise ServiceUnavailable("unreachable") from exc  # never put secrets here

    READINESS_CHECKS = [Cache(), PaymentsApi()]
"""

from health_check.base import HealthCheck

READINESS_CHECKS: list[HealthCheck] = []
