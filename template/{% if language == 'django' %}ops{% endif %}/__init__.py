"""Operational plumbing shared by every service of the fleet: health, readiness, metrics, request
ids, JSON logs and the gunicorn lifecycle. Managed by the template: `copier update` keeps it
current, so put the service's own code in the `service` app instead.

Nothing here may import Django at package import time: gunicorn's master process and the
container HEALTHCHECK (`python -m ops.healthcheck`) import parts of it without Django.
"""
