"""Envelope encryption of tenant text: AES-256-GCM with the tenant's data key (cryptography's AEAD).

Stored form: ``cs1:<data key id>:<base64url(nonce || ciphertext+tag)>``. The key id lets a rotation run
while traffic flows: rows name the key that opens them, the old key keeps decrypting until the rotation
command has re-encrypted every row. The tenant's schema name is bound in as associated data, so a value
copied into another tenant's table does not decrypt there.

Unwrapped data keys are cached in process memory (they never change for a given id); *which* key is active
for new writes is cached for settings.CONVOSUITE_KEY_CACHE_SECONDS, the window the rotation command waits
out before its final re-encryption pass.
"""

import base64
import binascii
import os
import threading
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django_tenants.utils import get_public_schema_name

from convosuite.log_redaction import remember_sensitive_text
from keys.kms import get_kms
from keys.models import TenantKey
from tenants.context import current_schema
from tenants.models import Tenant

PREFIX = "cs1"
NONCE_BYTES = 12


class EncryptionError(RuntimeError):
    """Text could not be encrypted or decrypted (no tenant, no key, wrong tenant, tampered value)."""


_lock = threading.Lock()
_data_keys: dict[tuple[str, int], AESGCM] = {}
_active_key_ids: dict[str, tuple[int, float]] = {}


def forget_cached_keys() -> None:
    with _lock:
        _data_keys.clear()
        _active_key_ids.clear()


def _wrap_context(schema: str, key_id: int) -> bytes:
    return f"convosuite-data-key:{schema}:{key_id}".encode()


def _require_tenant_schema(schema: str | None) -> str:
    schema = schema or current_schema()
    if schema == get_public_schema_name():
        raise EncryptionError("Tenant text can only be encrypted or decrypted inside a tenant's schema.")
    return schema


def create_data_key(tenant: Tenant, key_id: int, state: str = TenantKey.State.ACTIVE) -> TenantKey:
    master_key_id, wrapped = get_kms().wrap(
        AESGCM.generate_key(bit_length=256), context=_wrap_context(tenant.schema_name, key_id)
    )
    return TenantKey.objects.create(
        tenant=tenant, key_id=key_id, state=state, master_key_id=master_key_id, wrapped_key=wrapped
    )


def ensure_tenant_key(tenant: Tenant) -> TenantKey:
    """The tenant's active data key, created on first use (tenant creation; tenants that predate keys)."""
    key = TenantKey.objects.filter(tenant=tenant, state=TenantKey.State.ACTIVE).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            return create_data_key(tenant, key_id=1)
    except IntegrityError:
        # Created concurrently by another process: use that one.
        return TenantKey.objects.get(tenant=tenant, state=TenantKey.State.ACTIVE)


def ensure_key_for_schema(schema: str) -> TenantKey:
    return ensure_tenant_key(Tenant.objects.get(schema_name=schema))


def unwrap_data_key(key: TenantKey, schema: str) -> bytes:
    return get_kms().unwrap(
        key.master_key_id, bytes(key.wrapped_key), context=_wrap_context(schema, key.key_id)
    )


def _cipher(schema: str, key_id: int) -> AESGCM:
    cached = _data_keys.get((schema, key_id))
    if cached is not None:
        return cached
    key = TenantKey.objects.filter(tenant__schema_name=schema, key_id=key_id).first()
    if key is None:
        raise EncryptionError(f"Tenant {schema!r} has no data key {key_id}.")
    cipher = AESGCM(unwrap_data_key(key, schema))
    with _lock:
        _data_keys[(schema, key_id)] = cipher
    return cipher


def active_key_id(schema: str) -> int:
    now = time.monotonic()
    cached = _active_key_ids.get(schema)
    if cached is not None and cached[1] > now:
        return cached[0]
    key_id = (
        TenantKey.objects.filter(tenant__schema_name=schema, state=TenantKey.State.ACTIVE)
        .values_list("key_id", flat=True)
        .first()
    )
    if key_id is None:
        raise EncryptionError(f"Tenant {schema!r} has no active data key.")
    with _lock:
        _active_key_ids[schema] = (key_id, now + settings.CONVOSUITE_KEY_CACHE_SECONDS)
    return key_id


def encrypt_text(
    plaintext: str, *, schema: str | None = None, key_id: int | None = None, remember: bool = True
) -> str:
    """`remember=False` for bulk text that is never near a log line (document chunks, re-encryption,
    exports): registering it for log redaction would only push out the texts that matter."""
    schema = _require_tenant_schema(schema)
    key_id = active_key_id(schema) if key_id is None else key_id
    if remember:
        remember_sensitive_text(plaintext)
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(schema, key_id).encrypt(nonce, plaintext.encode(), schema.encode())
    return f"{PREFIX}:{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def parse_key_id(token: str) -> int:
    prefix, _, rest = token.partition(":")
    key_id, sep, _ = rest.partition(":")
    if prefix != PREFIX or not sep or not key_id.isdigit():
        raise EncryptionError("Value is not in the encrypted format (plaintext in an encrypted column?).")
    return int(key_id)


def bulk_decryptor(schema: str) -> Callable[[str], str]:
    """decrypt_text for many values of one tenant (exports): the schema is checked once, ciphers are looked
    up once per key id, and texts are not registered for log redaction (bulk reads never reach a log)."""
    schema = _require_tenant_schema(schema)
    associated_data = schema.encode()
    ciphers: dict[str, AESGCM] = {}

    def decrypt(token: str) -> str:
        head, _, body = token.rpartition(":")
        cipher = ciphers.get(head)
        if cipher is None:
            cipher = ciphers[head] = _cipher(schema, parse_key_id(token))
        try:
            raw = binascii.a2b_base64(body.encode().translate(_URLSAFE_TO_STANDARD), strict_mode=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise EncryptionError(f"Value does not decrypt with tenant {schema!r}'s key ({head}).") from None

    return decrypt


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def decrypt_text(token: str, *, schema: str | None = None, remember: bool = True) -> str:
    schema = _require_tenant_schema(schema)
    key_id = parse_key_id(token)
    try:
        raw = base64.urlsafe_b64decode(token.rsplit(":", 1)[1].encode())
        plaintext = _cipher(schema, key_id).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], schema.encode())
    except (InvalidTag, binascii.Error, ValueError):
        raise EncryptionError(f"Value does not decrypt with tenant {schema!r}'s key {key_id}.") from None
    text = plaintext.decode()
    if remember:
        remember_sensitive_text(text)
    return text
