"""Tenant lifecycle actions. Views, commands and tests call these; nothing else creates tenants."""

import re
from pathlib import Path
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_exists, tenant_context

from accounts.middleware import SESSION_TENANT_KEY
from audit.actions import do_record_audit_event
from gateway.actions import do_create_default_policy
from keys.crypto import ensure_tenant_key
from lifecycle.archive import write_tenant_archive
from lifecycle.keys import destroy_tenant_key
from tenants.models import Domain, Tenant, TenantTombstone
from tenants.schema_recipe import do_build_tenant_schema

TENANT_SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


class TenantSlugError(ValueError):
    pass


def do_create_tenant(
    *, slug: str, name: str, domains: list[str], acting_label: str = "tenant onboarding"
) -> Tenant:
    """Create a tenant with its data key, schema, migrations, domains and default gateway policy (budgets,
    limits, allow-list), or return the existing one (idempotent). Its slug is the tenant claim the identity
    provider puts in its members' tokens.

    The schema is built by the migrations, never by cloning a base schema (django-tenants' clone drops the
    dimension of vector columns): the first tenant of a set of migrations runs migrate_schemas, later ones
    replay the statements it executed (tenants/schema_recipe.py).
    """
    if slug != get_public_schema_name() and not TENANT_SLUG_RE.match(slug):
        raise TenantSlugError(
            f"Tenant slug {slug!r} must start with a letter and use only a-z, 0-9 and _ (2-41 chars)."
        )
    tenant = Tenant.objects.filter(schema_name=slug).first()
    created = tenant is None
    if tenant is None:
        with transaction.atomic():
            tenant = Tenant.objects.create(schema_name=slug, name=name)
    if slug != get_public_schema_name():
        # The data key exists before the schema: its migrations may already encrypt rows.
        ensure_tenant_key(tenant)
        # Also when an earlier attempt created the row but not the schema (a failed replay leaves none).
        if created or not schema_exists(slug):
            do_build_tenant_schema(tenant)
    for index, domain in enumerate(domains):
        Domain.objects.get_or_create(domain=domain, defaults={"tenant": tenant, "is_primary": index == 0})
    if created and slug != get_public_schema_name():
        with tenant_context(tenant):
            # The platform's default budgets, limits and allow-list from the first minute (not on first use),
            # so the tenant's audit trail starts with what it was given.
            do_create_default_policy(actor_label=acting_label)
            do_record_audit_event(
                kind="tenant.created",
                actor_label=acting_label,
                details={"name": name, "domains": list(domains), "identity_provider_tenant_claim": slug},
            )
    return tenant


class TenantLifecycleError(ValueError):
    """A lifecycle step that cannot be done as asked; the message is shown to the operator."""


def _record_in_tenant(tenant: Tenant, kind: str, actor_label: str, details: dict[str, Any]) -> None:
    with tenant_context(tenant):
        do_record_audit_event(kind=kind, actor_label=actor_label, details=details)


@transaction.atomic
def do_freeze_tenant(tenant: Tenant, *, reason: str, acting_label: str) -> Tenant:
    """Incident mode: the tenant's domain becomes read-only and no model call is made for it."""
    if tenant.is_platform:
        raise TenantLifecycleError("The platform itself cannot be frozen.")
    if not reason.strip():
        raise TenantLifecycleError(
            "Say why the tenant is frozen (it is recorded in the tenant's audit trail)."
        )
    tenant.status = Tenant.Status.FROZEN
    tenant.save(update_fields=["status"])
    _record_in_tenant(tenant, "tenant.frozen", acting_label, {"reason": reason.strip()})
    return tenant


@transaction.atomic
def do_unfreeze_tenant(tenant: Tenant, *, reason: str, acting_label: str) -> Tenant:
    if tenant.status != Tenant.Status.FROZEN:
        raise TenantLifecycleError(f"Tenant {tenant.schema_name} is {tenant.status}, not frozen.")
    tenant.status = Tenant.Status.ACTIVE
    tenant.save(update_fields=["status"])
    _record_in_tenant(tenant, "tenant.unfrozen", acting_label, {"reason": reason.strip()})
    return tenant


def _forget_sessions_of(schema_name: str) -> int:
    """Sessions live in the public schema; those bound to the tenant go with it."""
    doomed = [
        session.pk
        for session in Session.objects.iterator(chunk_size=2000)
        if session.get_decoded().get(SESSION_TENANT_KEY) == schema_name
    ]
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def do_offboard_tenant(tenant: Tenant, *, archive_dir: Path, acting_label: str) -> TenantTombstone:
    """Export everything the tenant owns into one archive, then remove every trace of it but a tombstone.

    Order matters: freeze (nothing changes during the export), export and fingerprint the archive, then in
    one transaction destroy the data key, the sessions, the domains, grants, the schema and the tenant row.
    """
    if tenant.is_platform:
        raise TenantLifecycleError("The platform itself cannot be offboarded.")
    slug, name = tenant.schema_name, tenant.name
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.FROZEN)
    _record_in_tenant(tenant, "tenant.offboarding_started", acting_label, {})
    archive_dir.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    archive_path = archive_dir / f"{slug}-{stamp}.zip"
    archive_sha256 = write_tenant_archive(tenant, archive_path)
    with transaction.atomic():
        destroy_tenant_key(tenant)
        _forget_sessions_of(slug)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {connection.ops.quote_name(slug)} CASCADE")  # noqa: S608 - slug validated at creation, quoted
        # Deleting the row cascades to its domains and break-glass grants (both exported above).
        Domain.objects.filter(tenant=tenant).delete()
        Tenant.objects.filter(pk=tenant.pk).delete()
        return TenantTombstone.objects.create(
            slug=slug,
            name=name,
            offboarded_at=timezone.now(),
            archive_sha256=archive_sha256,
            archive_name=archive_path.name,
        )
