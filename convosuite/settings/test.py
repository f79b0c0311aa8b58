"""Test settings: the same real services (PostgreSQL, Redis, Celery, the identity provider), but a
separate database, Redis database and Celery queue, and the provider simulator as the model back end."""

from .base import *  # noqa: F403
from .base import GATEWAY_MODELS, env

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

# A provider embedding model served by the simulator (used once gateway.embed exists).
KNOWLEDGE_EMBEDDING_MODELS = {
    **KNOWLEDGE_EMBEDDING_MODELS,  # noqa: F405
    "sim-embedding": {"label": "Simulated provider (384)", "dimensions": 384, "backend": "gateway",
                      "gateway_model": "sim-embedding"},
}  # fmt: skip
