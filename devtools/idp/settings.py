"""Settings for the development identity provider only; the main app's settings are never involved.

Configured through IDP_* environment variables, which ``python -m devtools.idp`` fills in
from its command line before Django starts.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

from devtools.idp import config, keys

DATA_DIR = Path(os.environ.get("IDP_DATA_DIR", config.DATA_DIR)).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

ISSUER = os.environ.get("IDP_ISSUER", config.ISSUER)
# The OIDC endpoints are mounted under the issuer's path so ISSUER/.well-known/... resolves.
ISSUER_PATH_PREFIX = urlsplit(ISSUER).path.strip("/")

IDP_TENANT_CLAIM = os.environ.get("IDP_TENANT_CLAIM", config.TENANT_CLAIM)
# Development only: tenant hosts accepted as redirect targets without being listed (tenant_hosts.py).
IDP_TENANT_HOSTS = os.environ.get("IDP_TENANT_HOSTS", " ".join(config.TENANT_HOSTS)).replace(",", " ").split()
# The users file, read again when it changes (bootstrap.sync_users_if_changed): a user added for a newly
# onboarded tenant signs in without a restart.
IDP_USERS_FILE = Path(os.environ.get("IDP_USERS", config.USERS_FILE))
IDP_ROLES_CLAIM = os.environ.get("IDP_ROLES_CLAIM", config.ROLES_CLAIM)
# The "aud" of access tokens: the resource server (the tenant API) accepts only tokens issued for it.
IDP_API_AUDIENCE = os.environ.get("IDP_API_AUDIENCE", config.API_AUDIENCE)

SECRET_KEY = keys.django_secret_key(DATA_DIR)
DEBUG = False
# Browsers reach the IdP through the issuer's host; other names (e.g. a compose
# service name used for back-channel calls) can be added with IDP_ALLOWED_HOSTS.
ALLOWED_HOSTS = [
    urlsplit(ISSUER).hostname or "localhost",
    "localhost",
    "127.0.0.1",
    "[::1]",
    *os.environ.get("IDP_ALLOWED_HOSTS", "").replace(",", " ").split(),
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "devtools.idp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "devtools.idp.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "idp.sqlite3",
        # The server is threaded: take the write lock up front and wait for it rather
        # than failing with "database is locked" when two requests overlap.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "idp.User"
# Demo passwords are public, and full-strength PBKDF2 would add seconds to every start
# (each user's password is checked against the users file) and to each login.
PASSWORD_HASHERS = ["devtools.idp.hashers.DevPBKDF2PasswordHasher"]
LOGIN_URL = "idp:login"
LOGIN_REDIRECT_URL = "idp:home"

# The main app may run on localhost as well, and cookies ignore the port: distinct
# names keep the two session and CSRF cookies from overwriting each other.
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"
SESSION_COOKIE_HTTPONLY = True

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": ISSUER,
    "OIDC_RSA_PRIVATE_KEY": keys.signing_key_pem(DATA_DIR),
    "OAUTH2_VALIDATOR_CLASS": "devtools.idp.validators.ClaimsValidator",
    "SCOPES": {
        "openid": "Sign you in",
        "email": "Your e-mail address",
        "profile": "Your name and username",
    },
    "DEFAULT_SCOPES": ["openid"],
    # Access tokens are signed JWTs carrying tenant and roles (devtools/idp/tokens.py); refresh tokens
    # are only ever read by this provider, so they stay opaque random strings.
    "ACCESS_TOKEN_GENERATOR": "devtools.idp.tokens.signed_access_token",
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
    "PKCE_REQUIRED": True,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "ID_TOKEN_EXPIRE_SECONDS": 3600,
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    # Behave like a careful production provider, so the main app is tested against one:
    # S256 only, no implicit or password grant, tokens hashed at rest, and the RFC 9207
    # "iss" parameter on the authorization response.
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
}

# DEBUG is off, so without this unhandled errors would vanish instead of reaching the console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[idp] %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "oauth2_provider": {"handlers": ["console"], "level": "WARNING"},
    },
}
