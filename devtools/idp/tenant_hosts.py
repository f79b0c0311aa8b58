"""Redirect URIs of tenants onboarded after the provider started.

The sign-in client's redirect URIs are exact (RFC 9700), and django-oauth-toolkit's own wildcards do not cover
a name directly under ``localhost``. For development only, ``--tenant-hosts '*.localhost:8000'`` also accepts
``http://<one label>.localhost:8000/oidc/callback/`` as a redirect URI and ``http://<label>.localhost:8000/`` as
a post-logout URI, so a tenant onboarded at ``<slug>.localhost:8000`` signs in at once. Only one DNS label,
the main app's callback path and the tenant home are accepted, never another path or port.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings

from devtools.idp import config

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


def _host_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for spec in settings.IDP_TENANT_HOSTS:
        if not spec.startswith("*."):
            raise ValueError(f"tenant host {spec!r}: expected '*.' followed by a host and port")
        patterns.append(re.compile(_LABEL + re.escape(spec[1:].lower())))
    return patterns


def _matches(uri: str, path: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.query or parts.fragment or "@" in parts.netloc:
        return False
    if parts.path != path:
        return False
    return any(pattern.fullmatch(parts.netloc.lower()) for pattern in _host_patterns())


def is_tenant_callback(uri: str) -> bool:
    return _matches(uri, config.CALLBACK_PATH)


def is_tenant_home(uri: str) -> bool:
    return _matches(uri, "/")
