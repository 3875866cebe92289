from django.apps import AppConfig


class ServiceConfig(AppConfig):
    name = "service"
    verbose_name = "The service's own code"
