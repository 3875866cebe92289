"""The project's URLs plus a parametric route and a failing view, for the tracing tests."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config import urls as config_urls

logger = logging.getLogger("service.items")


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    logger.info("item looked up")
    return JsonResponse({"id": item_id})


def failing(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("the view failed")


handler404 = config_urls.handler404
handler500 = config_urls.handler500
urlpatterns = [
    path("items/<int:item_id>", item),
    path("boom", failing),
    *config_urls.urlpatterns,
]
