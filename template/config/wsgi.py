"""WSGI entry point: gunicorn serves ``config.wsgi:application`` (see gunicorn.conf.py).

Each gunicorn worker imports this module after the fork (and after the gevent worker's
monkey-patching), so what is set up here belongs to the worker. It is Django's
``get_wsgi_application()`` with one step between its two: traces (ops/tracing.py: nothing unless
an OTLP endpoint is set) start after Django's set-up and before the middleware is loaded.
"""

import os

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from ops import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django.setup(set_prefix=False)
tracing.start(settings.ENV, settings.SERVICE_NAME)
application = WSGIHandler()
