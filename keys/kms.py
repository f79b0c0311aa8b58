"""The seam between our data keys and whatever holds the master key.

Today the master keys come from the environment (settings.CONVOSUITE_MASTER_KEYS). A cloud KMS replaces
them by implementing the same three methods and naming its class in settings.CONVOSUITE_KMS_BACKEND; the
rest of the code only ever calls wrap/unwrap.
"""

import base64
import binascii
import functools
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

NONCE_BYTES = 12


class KeyUnwrapError(RuntimeError):
    """A wrapped data key could not be opened: unknown master key id, wrong key, or tampered bytes."""


class KeyWrapper(Protocol):
    def current_master_key_id(self) -> str: ...

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the current master key; returns (master key id, wrapped bytes)."""
        ...

    def unwrap(self, master_key_id: str, wrapped: bytes, *, context: bytes) -> bytes: ...


class EnvironmentMasterKeys:
    """Master keys from settings: a list of "id:base64-of-32-bytes"; the first entry wraps new keys, every
    entry can unwrap (so a new master key can be rolled out before the old one is dropped).

    AES-256-GCM with the context (tenant and data key id) as associated data: a wrapped key copied onto
    another tenant's row does not open."""

    def __init__(self, entries: list[str]) -> None:
        if not entries:
            raise ImproperlyConfigured(
                "CONVOSUITE_MASTER_KEYS is empty: set it to 'id:base64key[,id:base64key...]' "
                "(python manage.py generate_master_key prints one)."
            )
        self._keys: dict[str, AESGCM] = {}
        self._order: list[str] = []
        for entry in entries:
            key_id, sep, encoded = entry.strip().partition(":")
            try:
                raw = base64.urlsafe_b64decode(encoded.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if not sep or not key_id or len(raw) != 32:
                raise ImproperlyConfigured(
                    "Each CONVOSUITE_MASTER_KEYS entry must be 'id:base64url-of-32-bytes' (entry "
                    f"{key_id or '?'!r} is not)."
                )
            if key_id in self._keys:
                raise ImproperlyConfigured(
                    f"Master key id {key_id!r} appears twice in CONVOSUITE_MASTER_KEYS."
                )
            self._keys[key_id] = AESGCM(raw)
            self._order.append(key_id)

    def current_master_key_id(self) -> str:
        return self._order[0]

    def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        key_id = self.current_master_key_id()
        nonce = os.urandom(NONCE_BYTES)
        return key_id, nonce + self._keys[key_id].encrypt(nonce, data_key, context)

    def unwrap(self, master_key_id: str, wrapped: bytes, *, context: bytes) -> bytes:
        master = self._keys.get(master_key_id)
        if master is None:
            raise KeyUnwrapError(f"Master key {master_key_id!r} is not configured in this process.")
        try:
            return master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise KeyUnwrapError(f"Data key does not open with master key {master_key_id!r}.") from None


def generate_master_key_entry(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


@functools.cache
def _build_kms(backend: str, entries: tuple[str, ...]) -> KeyWrapper:
    cls = import_string(backend)
    kms: KeyWrapper = cls(list(entries))
    return kms


def get_kms() -> KeyWrapper:
    """The configured wrapper (cached per configuration, so tests can swap master keys with settings)."""
    return _build_kms(settings.CONVOSUITE_KMS_BACKEND, tuple(settings.CONVOSUITE_MASTER_KEYS))
