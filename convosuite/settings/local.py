"""Local development: `make up`. Insecure defaults are fine here and only here."""

from .base import *  # noqa: F403
from .base import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-development-only-not-a-secret")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", default="dev-secret-change-me")
# A fixed development master key: local data is not secret. Production sets its own (no default there).
CONVOSUITE_MASTER_KEYS = env.list(
    "CONVOSUITE_MASTER_KEYS", default=["local-1:bG9jYWwtZGV2ZWxvcG1lbnQtbWFzdGVyLWtleS0zMmI="]
)

# A generated development key; production requires CONVOSUITE_SIGNING_KEY.
AUDIT_SIGNING_KEY_DEV_FILE = str(BASE_DIR / ".devdata" / "audit-signing-key.pem")
