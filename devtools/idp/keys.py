"""Key material that must survive restarts, kept as files in the data directory."""

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _read_or_create(path: Path, make) -> str:
    try:
        # O_EXCL: if two processes start on the same data dir, exactly one key wins.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    value = make()
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def _new_rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def signing_key_pem(data_dir: Path) -> str:
    """RS256 signing key; a stable key keeps the JWKS (and relying parties' caches) valid."""
    return _read_or_create(data_dir / "oidc_rsa_private_key.pem", _new_rsa_pem)


def django_secret_key(data_dir: Path) -> str:
    """Persisted so IdP login sessions survive a restart."""
    return _read_or_create(data_dir / "django_secret_key.txt", lambda: secrets.token_urlsafe(50)).strip()
