"""The tenant's OpenAI-compatible HTTP API (/v1/...) and its credentials (API keys, OIDC access tokens)."""
