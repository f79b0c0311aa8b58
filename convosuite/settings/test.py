"""Test settings: the same real services (PostgreSQL, Redis, Celery, the identity provider), but a
separate database, Redis database and Celery queue, and the provider simulator as the model back end."""

from .base import *  # noqa: F403
from .base import BASE_DIR, GATEWAY_MODELS, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-not-a-secret")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", default="test-secret")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

GATEWAY_SIMULATOR_BASE = env("GATEWAY_SIMULATOR_BASE", default="http://127.0.0.1:8092/v1")
GATEWAY_MODELS = {
    **GATEWAY_MODELS,
    "sim-model": {
        "litellm_model": "openai/sim-model",
        "api_base": GATEWAY_SIMULATOR_BASE,
        "api_key": "sim-key",
        "provider": "simulator",
        "input_cost_per_token": "0.000001",
        "output_cost_per_token": "0.000002",
        "max_tokens": 128,
        "timeout_seconds": 5,
    },
}
GATEWAY_DEFAULT_MODEL = "sim-model"

AUDIT_SIGNING_KEY_DEV_FILE = str(BASE_DIR / ".devdata" / "test-audit-signing-key.pem")
AUDIT_EXPORT_DIR = env("AUDIT_EXPORT_DIR", default=str(BASE_DIR / "test-artifacts" / "exports"))
