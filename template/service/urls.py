"""The service's own routes. Yours: `copier update` never changes this file."""

from django.urls import path

from service import views

urlpatterns = [
    path("", views.index, name="index"),
]
