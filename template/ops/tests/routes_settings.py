"""config.settings with ops.tests.routes as the URLconf: gunicorn serves the tracing tests' routes
(DJANGO_SETTINGS_MODULE=ops.tests.routes_settings)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "ops.tests.routes"
