"""The Django project: settings, URLs, the WSGI entry point and the environment schema."""
