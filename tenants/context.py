"""Typed access to the tenant context that django-tenants keeps on the database connection."""

from django.db import connection
from django_tenants.utils import get_public_schema_name


def current_schema() -> str:
    """The schema the connection is set to: a tenant's, or the public (platform) schema."""
    return str(getattr(connection, "schema_name"))  # noqa: B009 - attribute added by django-tenants' backend


def in_tenant_schema() -> bool:
    return current_schema() != get_public_schema_name()
