"""Ed25519 signing of audit manifests and chain checkpoints.

The private key comes from CONVOSUITE_SIGNING_KEY (a PEM, or the PEM base64-encoded so it fits in one
environment line). Local development and tests may instead name a file (AUDIT_SIGNING_KEY_DEV_FILE) that
is generated on first use; production settings have no such default. The public half is registered in the
public schema (evidence.models.SigningKey) and published at /.well-known/convosuite-audit-key.
"""

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from evidence.models import SigningKey


@dataclass(frozen=True)
class PlatformKey:
    private_key: Ed25519PrivateKey
    key_id: str
    public_key_pem: str

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode("ascii")


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id_for(public_key: Ed25519PublicKey) -> str:
    """First 16 bytes (hex) of SHA-256 over the raw 32-byte public key; the verifier computes the same."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def _parse_private_key(material: bytes) -> Ed25519PrivateKey:
    text = material.strip()
    if not text.startswith(b"-----BEGIN"):
        text = base64.b64decode(text)
    key = serialization.load_pem_private_key(text, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("CONVOSUITE_SIGNING_KEY must be an Ed25519 private key.")
    return key


def _load_or_create_dev_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # O_EXCL: two processes starting at once must not each write their own key.
        try:
            with path.open("xb") as handle:
                handle.write(pem)
            path.chmod(0o600)
        except FileExistsError:
            pass
    return _parse_private_key(path.read_bytes())


@functools.cache
def _private_key() -> Ed25519PrivateKey:
    material = getattr(settings, "AUDIT_SIGNING_KEY", "")
    if material:
        return _parse_private_key(material.encode("ascii"))
    dev_file = getattr(settings, "AUDIT_SIGNING_KEY_DEV_FILE", None)
    if dev_file:
        return _load_or_create_dev_key(Path(dev_file))
    raise ImproperlyConfigured("Set CONVOSUITE_SIGNING_KEY (Ed25519 private key, PEM or base64 PEM).")


def platform_key() -> PlatformKey:
    """The active signing key, registered (once) in the public schema so its public half is published."""
    private_key = _private_key()
    public = private_key.public_key()
    key = PlatformKey(
        private_key=private_key, key_id=key_id_for(public), public_key_pem=public_key_pem(public)
    )
    _register(key.key_id, key.public_key_pem)
    return key


def _register(key_id: str, pem: str) -> None:
    # evidence_signingkey exists only in the public schema; tenant search paths end in public, so this
    # works from a tenant context too.
    if SigningKey.objects.filter(key_id=key_id).exists():
        return
    with transaction.atomic():
        _, created = SigningKey.objects.get_or_create(key_id=key_id, defaults={"public_key_pem": pem})
        if created:
            SigningKey.objects.filter(retired_at__isnull=True).exclude(key_id=key_id).update(
                retired_at=timezone.now()
            )


def published_keys() -> list[SigningKey]:
    platform_key()
    return list(SigningKey.objects.all())
