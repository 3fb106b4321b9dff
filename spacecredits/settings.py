"""Settings, all read from the environment (see README "Configuration").

Embedded defaults run the app on an embedded PostgreSQL server with Celery tasks executed
in-process, so `make demo` needs nothing but Python.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = "pytest" in sys.modules
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for a development default).")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "spacecredits",  # for its management command, grant_app_role
    "django_htmx",
    "template_partials",
    "customers",
    "credits",
    "notifications",
    "ninja",  # its Swagger UI files, served from our static files (no CDN)
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # CONTENT_SECURITY_POLICY below
    "api.problems.ProblemJsonMiddleware",  # every error under /api/ as problem+json
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Text responses gzipped (WhiteNoise serves static files' own .gz copies before this).
    # BREACH: docs/frontend.md says why compressing pages that carry a CSRF token is safe here.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "spacecredits.urls"
WSGI_APPLICATION = "spacecredits.wsgi.application"
# Every form renders its fields through templates/forms/field.html (spacecredits/forms.py).
FORM_RENDERER = "spacecredits.forms.FormRenderer"

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
                "spacecredits.context_processors.navigation",
            ],
            "builtins": ["spacecredits.formats"],
        },
    },
]

# One database engine, PostgreSQL: the server at DATABASE_URL, or else (make demo, make test)
# an embedded one started for this folder (spacecredits/embedded_postgres.py).
if os.environ.get("DATABASE_URL"):
    _database = dj_database_url.parse(os.environ["DATABASE_URL"])
elif DEBUG or TESTING:
    from spacecredits.embedded_postgres import database_settings

    _database = database_settings(BASE_DIR)
else:
    raise ImproperlyConfigured("Set DATABASE_URL to a PostgreSQL server (see the README).")
if _database["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL: the ledger runs there.")
_database["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60"))
DATABASES = {"default": _database}

AUTH_USER_MODEL = "customers.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

if TESTING:
    # Hashing with the production hasher costs ~0.3 s a user; tests create hundreds.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# collectstatic writes each file under a content-hashed name (app.3f9c1a2b4d5e.css) with a
# gzip copy, and WhiteNoise serves those with a cache header of a year (docs/frontend.md).
# With DEBUG on (make demo) the names stay plain and WhiteNoise serves the source files;
# the tests, which do not collect, use the plain storage (tests/spacecredits/test_static_files.py
# collects with this one).
STATIC_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if TESTING
        else STATIC_STORAGE
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# HTTPS, for a site served behind a TLS-terminating reverse proxy (README, "Running it for
# real"; its recipe passes `manage.py check --deploy`). Each is off by default so `make demo`
# and a plain-http `make up` on 127.0.0.1 work.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# A load balancer may probe the health check over plain http; a redirect is not an answer.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The request header (as Django names it, e.g. HTTP_X_FORWARDED_PROTO) in which the proxy
# says "https". Set it only behind a proxy that overwrites that header on every request.
if proxy_ssl_header := os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    if not proxy_ssl_header.startswith("HTTP_"):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER names a request header as Django sees it, "
            "e.g. HTTP_X_FORWARDED_PROTO for X-Forwarded-Proto."
        )
    SECURE_PROXY_SSL_HEADER = (proxy_ssl_header, "https")

# Content-Security-Policy (django-csp): our own scripts, styles and images only, nothing
# inline (htmx is configured in base.html not to inject its indicator style), no plugins,
# no framing, forms posted only here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Email: each Django email setting is read from the variable of the same name.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
if "EMAIL_FILE_PATH" in os.environ:
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "SpaceCredits <credits@localhost>")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# Who is told of what only operators need to know (a mismatch check_ledger found):
# comma-separated addresses; empty: every active superuser.
ADMINS = [(a.strip(), a.strip()) for a in os.environ.get("ADMINS", "").split(",") if a.strip()]

# Absolute links in emails.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# Celery. Without a broker, tasks run in-process (the relay's code runs them after commit).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "expire-due-credits": {
        "task": "credits.tasks.expire_due_credits",
        "schedule": timedelta(minutes=5),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Failed logins: django-axes locks out a username from one IP address for a while after
# repeated failures (the login form's "username" field holds the email address). The
# password checks on the Account page count too (customers.auth.password_is_right).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes asks
AUTHENTICATION_BACKENDS = [
    "customers.auth.LoginThrottleBackend",  # axes, see its docstring
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "customers.auth.login_attempt_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "customers.auth.lockout_response"
# Failures are stored with the form that failed; the account forms' passwords are masked
# like the login's "password" is.
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "old_password",
    "new_password1",
    "new_password2",
    "current_password",
]

# --- Notifications: email delivery through Celery (see notifications/services.py) ---------
# A task is acknowledged only after it ran, and put back when its worker dies, so a crash
# never loses one; delivery is idempotent, so running one twice sends one email.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands an unacknowledged task to another worker after this many seconds. Delivery
# tasks do not wait on it: the relay hands a delivery out again when its 30 s lease ends.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No resend sweep: the relay (python manage.py relay_deliveries) polls for due deliveries
# every few seconds (notifications/delivery.py).
CELERY_BEAT_SCHEDULE |= {
    "send-expiry-reminders": {
        "task": "credits.tasks.send_expiry_reminders",
        "schedule": timedelta(hours=1),
    },
    # python manage.py check_ledger, nightly in the space's zone (CELERY_TIMEZONE); a
    # mismatch is emailed to ADMINS, or to the superusers when ADMINS is empty.
    "check-ledger": {
        "task": "credits.tasks.check_ledger",
        "schedule": crontab(hour=3, minute=30),
    },
}
# Statements the ledger runs for every adjustment are prepared once per connection
# (spacecredits/db.py). Turn off behind a pooler that cannot keep prepared statements
# (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
# How many batches of the expiry sweep run at once on PostgreSQL, each on its own
# database connection (credits.services.expire_due_credits); 1 runs them one by one.
CREDITS_SWEEP_CONNECTIONS = int(os.environ.get("CREDITS_SWEEP_CONNECTIONS", "2"))
# A refunded or reversed share whose lot expired meanwhile comes back as a lot that lasts
# this many days after the day of the refund (docs/ledger.md, "The other verbs").
CREDITS_REFUND_GRACE_DAYS = int(os.environ.get("CREDITS_REFUND_GRACE_DAYS", "7"))
# The first retry's delay in seconds (doubling each time, notifications/delivery.py); tests
# shorten it.
NOTIFICATION_RETRY_BASE_SECONDS = float(os.environ.get("NOTIFICATION_RETRY_BASE_SECONDS", "10"))

# --- The public API (api/, docs/api.md) ---------------------------------------------------
# API keys are stored as HMAC-SHA256 keyed by this (SECRET_KEY unless set: set it so that
# rotating SECRET_KEY does not revoke every key).
API_KEY_SECRET = os.environ.get("API_KEY_SECRET", SECRET_KEY)
# Requests per second per key, and the burst a key may spend at once (a token bucket).
API_RATE_LIMIT = float(os.environ.get("API_RATE_LIMIT", "50"))
API_RATE_BURST = float(os.environ.get("API_RATE_BURST", str(2 * API_RATE_LIMIT)))
CELERY_BEAT_SCHEDULE |= {
    "delete-expired-idempotency-records": {
        "task": "api.tasks.delete_expired_idempotency_records",
        "schedule": timedelta(hours=1),
    },
    "delete-old-webhook-deliveries": {
        "task": "api.tasks.delete_old_webhook_deliveries",
        "schedule": crontab(hour=4, minute=15),
    },
}
# Webhook targets may be private or loopback addresses only when this is on (tests, a
# space's own network); link-local and cloud metadata addresses are always refused.
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", TESTING)
# Seconds before each retry of a webhook (api/webhook_delivery.py: Standard Webhooks'
# schedule unless set, as "5,300,..."; tests shorten it) and each attempt's timeout.
WEBHOOK_RETRY_SECONDS = [
    float(s) for s in os.environ.get("WEBHOOK_RETRY_SECONDS", "").split(",") if s.strip()
]
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))
# Deliveries that are done (sent, or failed for good) are kept this long with their
# attempts, then deleted nightly (a pending one is kept whatever its age).
WEBHOOK_DELIVERY_RETENTION_DAYS = int(os.environ.get("WEBHOOK_DELIVERY_RETENTION_DAYS", "30"))
