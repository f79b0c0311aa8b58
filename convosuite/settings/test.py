"""Test settings: the same real services (PostgreSQL, Redis, Celery, the identity provider), but a
separate database, Redis database and Celery queue, and the provider simulator as the model back end."""

import os

from .base import *  # noqa: F403
from .base import BASE_DIR, GATEWAY_MODELS, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-not-a-secret")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", default="test-secret")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
# pytest-xdist workers share the broker's Redis database: each (and the Celery workers it starts, which inherit
# PYTEST_XDIST_WORKER) gets its own queue, as it gets its own test database (pytest-django's _gw<n> suffix).
if "PYTEST_XDIST_WORKER" in os.environ and "CELERY_TASK_DEFAULT_QUEUE" not in os.environ:
    CELERY_TASK_DEFAULT_QUEUE = f"convosuite-test-{os.environ['PYTEST_XDIST_WORKER']}"
GATEWAY_REDIS_URL = env("GATEWAY_REDIS_URL", default=CELERY_BROKER_URL)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests count model calls and tokens exactly: no title call after each first answer (its own test turns it on).
CHAT_GENERATED_TITLES = env.bool("CHAT_GENERATED_TITLES", default=False)

GATEWAY_SIMULATOR_BASE = env("GATEWAY_SIMULATOR_BASE", default="http://127.0.0.1:8092/v1")
# The seed of the test catalogue (tests/conftest.py inserts it and points the simulator entries at the
# session's simulator).
os.environ.setdefault("GATEWAY_SIMULATOR_KEY", "sim-key")
GATEWAY_MODELS = {
    **GATEWAY_MODELS,
    "sim-model": {
        "litellm_model": "openai/sim-model",
        "api_base": GATEWAY_SIMULATOR_BASE,
        "api_key_env": "GATEWAY_SIMULATOR_KEY",
        "provider": "simulator",
        "input_cost_per_token": "0.000001",
        "output_cost_per_token": "0.000002",
        "max_tokens": 128,
        "timeout_seconds": 5,
        # The simulator counts whitespace-separated words: never more than OpenAI's tokens for a text.
        "tokenizer": "openai",
        "context_window": 128_000,
    },
    "sim-embedding": {
        "kind": "embedding",
        "litellm_model": "openai/sim-embedding",
        "api_base": GATEWAY_SIMULATOR_BASE,
        "api_key_env": "GATEWAY_SIMULATOR_KEY",
        "provider": "simulator",
        "input_cost_per_token": "0.0000001",
        "output_cost_per_token": "0",
        "timeout_seconds": 5,
        "tokenizer": "openai",
    },
    # A second deployment on the simulator, used as the fallback of sim-model in failover tests.
    "sim-fallback": {
        "litellm_model": "openai/sim-fallback",
        "api_base": GATEWAY_SIMULATOR_BASE,
        "api_key_env": "GATEWAY_SIMULATOR_KEY",
        "provider": "simulator-b",
        "input_cost_per_token": "0.000002",
        "output_cost_per_token": "0.000004",
        "max_tokens": 128,
        "timeout_seconds": 5,
        # The simulator counts whitespace-separated words: never more than OpenAI's tokens for a text.
        "tokenizer": "openai",
        "context_window": 128_000,
    },
    # In the catalogue but without a price: tenants cannot enable it.
    "sim-unpriced": {
        "litellm_model": "openai/sim-unpriced",
        "api_base": GATEWAY_SIMULATOR_BASE,
        "api_key_env": "GATEWAY_SIMULATOR_KEY",
        "provider": "simulator",
        "max_tokens": 128,
        "timeout_seconds": 5,
        # The simulator counts whitespace-separated words: never more than OpenAI's tokens for a text.
        "tokenizer": "openai",
        "context_window": 128_000,
    },
}
GATEWAY_DEFAULT_MODEL = "sim-model"
CONVOSUITE_MASTER_KEYS = env.list(
    "CONVOSUITE_MASTER_KEYS", default=["test-1:dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMtISE="]
)
# Short, so the key-rotation tests do not wait long for other processes to pick up a new key.
CONVOSUITE_KEY_CACHE_SECONDS = env.int("CONVOSUITE_KEY_CACHE_SECONDS", default=1)
# Calls in tests fail fast: a short backoff before each retry.
GATEWAY_RETRIES = env.int("GATEWAY_RETRIES", default=1)

# A provider embedding model served by the simulator (used once gateway.embed exists).
KNOWLEDGE_EMBEDDING_MODELS = {
    **KNOWLEDGE_EMBEDDING_MODELS,  # noqa: F405
    "sim-embedding": {"label": "Simulated provider (384)", "dimensions": 384, "backend": "gateway",
                      "gateway_model": "sim-embedding"},
}  # fmt: skip

AUDIT_SIGNING_KEY_DEV_FILE = str(BASE_DIR / ".devdata" / "test-audit-signing-key.pem")
AUDIT_EXPORT_DIR = env("AUDIT_EXPORT_DIR", default=str(BASE_DIR / "test-artifacts" / "exports"))
