from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-0123456789",
    "ALLOWED_HOSTS": "vito.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_production_values_pass_check_deploy() -> None:
    env = {**os.environ, **PRODUCTION_ENV}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_key_fallbacks_come_from_the_environment() -> None:
    # Rotating SECRET_KEY must not break the links already e-mailed (unsubscribe
    # links never expire): the old keys stay valid for signatures meanwhile.
    env = {**os.environ, "SECRET_KEY_FALLBACKS": "old-key-one  old-key-two"}
    code = "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['old-key-one', 'old-key-two']"


def test_queues_use_json_and_enqueue_on_commit() -> None:
    assert set(settings.RQ_QUEUES) == {"default", "high"}
    # One Redis for every queue, with the connect and read timeouts added (config/settings.py).
    (url,) = {str(q["URL"]) for q in settings.RQ_QUEUES.values()}
    assert url.startswith(settings.REDIS_URL) and "socket_connect_timeout=" in url and "socket_timeout=" in url
    assert {q["SERIALIZER"] for q in settings.RQ_QUEUES.values()} == {"rq.serializers.JSONSerializer"}
    assert settings.RQ["COMMIT_MODE"] == "on_db_commit"
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
