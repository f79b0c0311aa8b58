"""API key actions. The console (later), the management command and the tests call these."""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.actions import do_record_audit_event
from gateway.api.models import ApiKey
from gateway.config import is_offered
from tenants.context import current_schema, in_tenant_schema

KEY_SCHEME = "cs-"
# last_used_at is a hint for admins, not an audit trail: write it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRejected(ValueError):
    """Input that cannot make a key (empty name, unknown model); the message is shown as is."""


class ApiKeyRevoked(Exception):
    """A genuine key that an administrator revoked."""


class ApiKeyExpired(Exception):
    """A genuine key past its expiry date."""


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    # The only time the secret exists outside the caller's hands: show it once, never store it.
    secret: str


@dataclass(frozen=True)
class ParsedKey:
    tenant_slug: str
    prefix: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key(key: str) -> ParsedKey | None:
    """Keys look like cs-<tenant>.<prefix>.<secret>. The tenant part lets a key used on another tenant's
    domain be refused as such (403) without looking into any other tenant's schema."""
    if not key.startswith(KEY_SCHEME):
        return None
    parts = key[len(KEY_SCHEME) :].split(".")
    if len(parts) != 3 or not all(parts):
        return None
    return ParsedKey(tenant_slug=parts[0], prefix=parts[1])


MAX_KEY_LIMIT = 10**12


def _check_limit(value: int | None, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEY_LIMIT:
        raise ApiKeyRejected(f"{label} must be a whole number of at least 1 (or empty for no limit).")
    return value


@transaction.atomic
def do_create_api_key(
    *,
    name: str,
    models: list[str] | None = None,
    acting_user: User | None = None,
    actor_label: str = "",
    expires_at: datetime | None = None,
    daily_token_budget: int | None = None,
    requests_per_minute: int | None = None,
) -> NewApiKey:
    """A new key; its secret is returned once. expires_at (aware, in the future), daily_token_budget and
    requests_per_minute are optional; the gateway's reservation enforces the limits next to the tenant's."""
    if not in_tenant_schema():
        raise RuntimeError("API keys belong to a tenant; no tenant schema is active.")
    clean_name = name.strip()
    if not clean_name:
        raise ApiKeyRejected("Give the key a name, so you can tell it apart later.")
    if len(clean_name) > 100:
        raise ApiKeyRejected("Key names are limited to 100 characters.")
    scoped = sorted(set(models or []))
    unknown = [alias for alias in scoped if not is_offered(alias)]
    if unknown:
        raise ApiKeyRejected(f"Unknown model(s): {', '.join(unknown)}.")
    if expires_at is not None and (timezone.is_naive(expires_at) or expires_at <= timezone.now()):
        raise ApiKeyRejected("The expiry date must be in the future.")
    daily_token_budget = _check_limit(daily_token_budget, "The daily token budget")
    requests_per_minute = _check_limit(requests_per_minute, "Requests per minute")
    prefix = secrets.token_hex(6)
    secret = f"{KEY_SCHEME}{current_schema()}.{prefix}.{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        name=clean_name,
        prefix=prefix,
        secret_hash=hash_key(secret),
        model_scope=scoped,
        created_by=acting_user,
        expires_at=expires_at,
        daily_token_budget=daily_token_budget,
        requests_per_minute=requests_per_minute,
    )
    do_record_audit_event(
        kind="api_key.created",
        actor=acting_user,
        actor_label=actor_label,
        details={
            "key_id": str(api_key.id),
            "name": clean_name,
            "prefix": prefix,
            "models": scoped,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "daily_token_budget": daily_token_budget,
            "requests_per_minute": requests_per_minute,
        },
    )
    return NewApiKey(api_key=api_key, secret=secret)


def access_api_key_by_id(key_id: uuid.UUID) -> ApiKey:
    api_key = ApiKey.objects.filter(id=key_id).first()
    if api_key is None:
        raise Http404("No such API key.")
    return api_key


@transaction.atomic
def do_revoke_api_key(api_key: ApiKey, *, acting_user: User | None = None, actor_label: str = "") -> ApiKey:
    """Revoking twice is harmless and writes no second event."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    do_record_audit_event(
        kind="api_key.revoked",
        actor=acting_user,
        actor_label=actor_label,
        details={"key_id": str(locked.id), "name": locked.name, "prefix": locked.prefix},
    )
    return locked


def authenticate_api_key(key: str) -> ApiKey | None:
    """The key of the current tenant matching `key`, or None; ApiKeyRevoked if it was revoked,
    ApiKeyExpired past its expiry. Constant-time on the secret."""
    parsed = parse_key(key)
    if parsed is None or parsed.tenant_slug != current_schema():
        return None
    api_key = ApiKey.objects.filter(prefix=parsed.prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, hash_key(key)):
        return None
    if api_key.revoked_at is not None:
        raise ApiKeyRevoked(api_key.prefix)
    if api_key.is_expired:
        raise ApiKeyExpired(api_key.prefix)
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key
