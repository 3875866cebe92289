"""Configuration: environment variables only, validated at start, all problems in one message."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.env import EX_CONFIG, ConfigError, load
from ops.tests.support import PRODUCTION, STRONG_KEY, manage


def problems(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load()
    return str(raised.value)


def test_unset_app_env_means_production(clean_env: pytest.MonkeyPatch) -> None:
    message = problems(clean_env)
    for name in ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL"]:
        assert f"  {name}: required in staging and production" in message


def test_development_needs_no_other_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("APP_ENV", "development")
    settings = load()
    assert settings.app_env == "development"
    assert settings.debug
    assert settings.database()["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.allowed_hosts() == ["localhost", "127.0.0.1", "[::1]"]
    assert settings.management_port is None


def test_production_reads_every_variable(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in {
        **PRODUCTION,
        # pragma: allowlist nextline secret: test data, no such database
        "DATABASE_URL": "postgres://app:pw@db:5432/app",
        "PORT": "9000",
        "MANAGEMENT_PORT": "9090",
        "LOG_LEVEL": "WARNING",
        "APP_VERSION": "1.2.3",
        "SHUTDOWN_DELAY_SECONDS": "2.5",
        "SHUTDOWN_TIMEOUT_SECONDS": "30",
        "DJANGO_ALLOWED_HOSTS": "a.example.com, b.example.com",
    }.items():
        clean_env.setenv(name, value)
    settings = load()
    assert not settings.debug
    assert (settings.port, settings.log_level, settings.app_version) == (9000, "warning", "1.2.3")
    assert settings.management_port == 9090
    assert (settings.shutdown_delay_seconds, settings.shutdown_timeout_seconds) == (2.5, 30)
    assert settings.allowed_hosts() == ["a.example.com", "b.example.com"]
    assert settings.secret_key() == STRONG_KEY
    database = settings.database()
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["OPTIONS"]["connect_timeout"] == 2


def test_production_names_every_missing_variable_at_once(clean_env: pytest.MonkeyPatch) -> None:
    message = problems(clean_env, APP_ENV="production", LOG_LEVEL="verbose")
    assert "(4 problems)" in message
    for name in ["LOG_LEVEL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL"]:
        assert f"  {name}: " in message
    assert "'verbose'" in message


@pytest.mark.parametrize(
    "key",
    [
        "short-but-random-Qx8",
        "django-insecure-" + STRONG_KEY,
        "a" * 60,
    ],
)
def test_weak_secret_keys_are_refused_and_never_echoed(
    clean_env: pytest.MonkeyPatch, key: str
) -> None:
    message = problems(
        clean_env, **{**PRODUCTION, "DATABASE_URL": "postgres://db/app", "DJANGO_SECRET_KEY": key}
    )
    assert "DJANGO_SECRET_KEY: too weak" in message
    assert key not in message


def test_staging_is_held_to_the_production_rules(clean_env: pytest.MonkeyPatch) -> None:
    assert "DJANGO_SECRET_KEY" in problems(clean_env, APP_ENV="staging")


def test_wildcard_hosts_are_refused_outside_development(clean_env: pytest.MonkeyPatch) -> None:
    message = problems(
        clean_env,
        **{**PRODUCTION, "DATABASE_URL": "postgres://db/app", "DJANGO_ALLOWED_HOSTS": "*"},
    )
    assert "DJANGO_ALLOWED_HOSTS: '*'" in message


def test_database_url_is_checked_and_its_password_never_echoed(
    clean_env: pytest.MonkeyPatch,
) -> None:
    message = problems(clean_env, DATABASE_URL="mongodb://app:hunter2@db/app")
    assert "DATABASE_URL: not a database URL" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_ENV", "prod"),
        ("LOG_LEVEL", "trace"),
        ("PORT", "http"),
        ("PORT", "70000"),
        ("SHUTDOWN_DELAY_SECONDS", "-1"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "0"),
        ("MANAGEMENT_PORT", "80"),
        ("MANAGEMENT_PORT", "admin"),
        ("WEB_CONCURRENCY", "0"),
        ("WEB_CONCURRENCY", "many"),
        ("GUNICORN_TIMEOUT", "0"),
    ],
)
def test_bad_values_are_named_with_the_value_given(
    clean_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    message = problems(clean_env, **{name: value})
    assert f"  {name}: " in message
    assert repr(value) in message


def test_management_port_must_differ_from_port(clean_env: pytest.MonkeyPatch) -> None:
    message = problems(clean_env, APP_ENV="development", PORT="9000", MANAGEMENT_PORT="9000")
    assert "  MANAGEMENT_PORT: must differ from PORT (9000)" in message


def test_an_empty_management_port_means_unset(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("APP_ENV", "development")
    clean_env.setenv("MANAGEMENT_PORT", "")
    assert load().management_port is None


def test_a_bad_environment_stops_manage_py_with_ex_config(tmp_path: Path) -> None:
    result = manage(
        tmp_path, "check", LOG_LEVEL="loud", APP_ENV="production", DATABASE_URL="postgres://db/app"
    )
    assert result.returncode == EX_CONFIG
    assert "LOG_LEVEL" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr
