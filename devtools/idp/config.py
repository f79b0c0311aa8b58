"""Defaults shared by the entry point and the settings module (every one overridable by IDP_* env)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

HOST = "127.0.0.1"
PORT = 8090
USERS_FILE = REPO_ROOT / "devtools" / "demo_users.json"
DATA_DIR = REPO_ROOT / ".devdata" / "idp"
ISSUER = "http://localhost:8090/o"
CLIENT_ID = "convosuite-web"
CLIENT_SECRET = "dev-secret-change-me"
REDIRECT_URIS = [
    "http://acme.localhost:8000/oidc/callback/",
    "http://globex.localhost:8000/oidc/callback/",
    "http://localhost:8000/oidc/callback/",
]
POST_LOGOUT_REDIRECT_URIS = [
    "http://acme.localhost:8000/",
    "http://globex.localhost:8000/",
    "http://localhost:8000/",
]
# Tenant hosts accepted without listing each (see tenant_hosts.py), e.g. "*.localhost:8000": a tenant
# onboarded at <slug>.localhost:8000 can sign in without restarting the provider. Empty: exact URIs only.
TENANT_HOSTS: list[str] = []
CALLBACK_PATH = "/oidc/callback/"
# Clients that get tokens for themselves (client credentials grant), each for one tenant.
SERVICE_CLIENTS_FILE = REPO_ROOT / "devtools" / "demo_service_clients.json"
API_AUDIENCE = "convosuite-api"
TENANT_CLAIM = "tenant"
ROLES_CLAIM = "roles"
