"""`manage.py check --deploy` with the settings staging and production really get."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from config.env import BASE_DIR
from ops.tests.support import PRODUCTION, manage, subprocess_env


def test_check_deploy_passes_in_production(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_fails_in_development(tmp_path: Path) -> None:
    """The check is not vacuous: development settings (DEBUG, HTTP) fail it."""
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG is on


def test_production_security_settings(tmp_path: Path) -> None:
    names = [
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_REFERRER_POLICY",
        "ALLOWED_HOSTS",
    ]
    script = (
        "import json, sys, django; from django.conf import settings; django.setup(); "
        "print(json.dumps(dict((n, getattr(settings, n)) for n in sys.argv[1:])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        env=subprocess_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", **PRODUCTION),
    )
    values = json.loads(result.stdout)
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_REFERRER_POLICY": "no-referrer",
        "ALLOWED_HOSTS": ["service.example.com"],
    }
