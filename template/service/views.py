"""The service's own views. Yours: `copier update` never changes this file."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"name": settings.SERVICE_NAME, "version": settings.APP_VERSION})
