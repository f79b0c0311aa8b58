"""Crypto-shredding of a tenant's data keys (envelope encryption: keys/).

Offboarding calls destroy_tenant_key(tenant) after the archive is written and before the tombstone: once the
keys are gone, any copy of the tenant's ciphertext (backups, replicas) is unreadable.
"""

from keys.crypto import forget_cached_keys
from keys.models import TenantKey
from tenants.models import Tenant


def destroy_tenant_key(tenant: Tenant) -> None:
    TenantKey.objects.filter(tenant=tenant).delete()
    # Unwrapped copies live in this process's memory: drop them too.
    forget_cached_keys()
