"""Production: secrets have no defaults, cookies are secure, DEBUG is off."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
# Required: without master keys no tenant text can be read or written.
CONVOSUITE_MASTER_KEYS = env.list("CONVOSUITE_MASTER_KEYS")
AUDIT_SIGNING_KEY = env("CONVOSUITE_SIGNING_KEY")
# Rehearsal fault injection (convosuite/faults.py) never runs in production, whatever the environment says.
INCIDENT_FAULT_HOOKS = False
