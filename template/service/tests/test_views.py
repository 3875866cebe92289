"""Tests of the service's own routes. Yours: `copier update` never changes this file."""

from django.test import Client
from pytest_django import Settings


def test_index_names_the_service_and_its_version(client: Client, settings: Settings) -> None:
    settings.APP_VERSION = "1.2.3"
    response = client.get("/")
    assert response.status_code == 200
    assert response.json() == {"name": settings.SERVICE_NAME, "version": "1.2.3"}


def test_index_refuses_writes(client: Client) -> None:
    assert client.post("/").status_code == 405
