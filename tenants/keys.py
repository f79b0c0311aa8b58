"""Seam for tenant data keys (envelope encryption arrives with feat/prompts).

Offboarding calls destroy_tenant_key(tenant) after the archive is written and before the tombstone: once the
key is gone, any copy of the tenant's ciphertext (backups, replicas) is unreadable (crypto-shredding).
"""

from tenants.models import Tenant


def destroy_tenant_key(tenant: Tenant) -> None:
    """No-op until tenant data keys exist: the prompts branch replaces the body with the real destruction."""
    return None
