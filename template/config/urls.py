"""URL routes. /health, /ready, /health/detailed and /metrics are not here: the ops middleware
answers them before host validation (see config/settings.py MIDDLEWARE)."""

from django.urls import include, path

urlpatterns = [
    path("", include("service.urls")),
]

# JSON instead of Django's HTML error pages: this is an API service.
handler400 = "ops.views.bad_request"
handler404 = "ops.views.not_found"
handler500 = "ops.views.server_error"
