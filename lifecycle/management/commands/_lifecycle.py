"""Shared bits of the lifecycle commands."""

import getpass

from django.core.management.base import CommandError

from tenants.models import Tenant


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(schema_name=slug).first()
    if tenant is None or tenant.is_platform:
        raise CommandError(f"No tenant {slug!r}.")
    return tenant


def operator_label() -> str:
    return f"operator {getpass.getuser()} (manage.py)"
