"""Shared by the gateway's management commands: run in one tenant's schema, chosen by its slug."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError, CommandParser
from django_tenants.utils import get_public_schema_name, tenant_context

from tenants.models import Tenant

OPERATOR_LABEL = "operator (manage.py)"


def add_tenant_argument(parser: CommandParser) -> None:
    parser.add_argument("--tenant", required=True, help="the tenant's slug (its schema name), e.g. acme")


@contextmanager
def in_tenant(slug: str) -> Iterator[Tenant]:
    tenant = Tenant.objects.filter(schema_name=slug).first()
    if tenant is None or slug == get_public_schema_name():
        raise CommandError(f"No tenant with the slug {slug!r}.")
    with tenant_context(tenant):
        yield tenant
