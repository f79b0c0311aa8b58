"""Tenant lifecycle actions. Views, commands and tests call these; nothing else creates tenants."""

import re

from django.db import transaction
from django_tenants.utils import get_public_schema_name

from tenants.models import Domain, Tenant

_SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


class TenantSlugError(ValueError):
    pass


def do_create_tenant(*, slug: str, name: str, domains: list[str]) -> Tenant:
    """Create a tenant with its data key, schema, migrations and domains, or return the existing one
    (idempotent).

    The schema is built by running migrations, never by cloning a base schema: django-tenants' clone
    drops the dimension of vector columns.
    """
    if slug != get_public_schema_name() and not _SLUG_RE.match(slug):
        raise TenantSlugError(
            f"Tenant slug {slug!r} must start with a letter and use only a-z, 0-9 and _ (2-41 chars)."
        )
    from keys.crypto import ensure_tenant_key

    tenant = Tenant.objects.filter(schema_name=slug).first()
    created = tenant is None
    if tenant is None:
        with transaction.atomic():
            tenant = Tenant.objects.create(schema_name=slug, name=name)
    if slug != get_public_schema_name():
        # The data key exists before the schema: its migrations may already encrypt rows.
        ensure_tenant_key(tenant)
        if created:
            tenant.create_schema(check_if_exists=True, verbosity=0)
    for index, domain in enumerate(domains):
        Domain.objects.get_or_create(domain=domain, defaults={"tenant": tenant, "is_primary": index == 0})
    return tenant
