"""Tenant lifecycle: onboarding by command, freeze (read-only, no model calls) and offboarding that leaves no
row of the tenant anywhere, only a tombstone and an archive."""

import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import Role
from audit.actions import do_record_audit_event
from audit.models import AuditEvent
from chat.actions import MessageRejected, do_generate_assistant_reply, do_post_user_message
from chat.models import Message
from devtools.llm_simulator.testing import SimulatorControl
from gateway.models import GatewayPolicy, ModelCall
from keys.models import TenantKey
from lifecycle.actions import do_create_tenant, do_freeze_tenant, do_offboard_tenant
from lifecycle.break_glass import do_open_break_glass_grant
from tenants.models import Domain, Tenant, TenantTombstone
from tenants.status import TENANT_FROZEN_MESSAGE
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory, MessageFactory, ModelCallFactory


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [name])
        return cursor.fetchone() is not None


# --- onboarding ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("committed_db")
def test_create_tenant_command_builds_schema_and_domains(tmp_path: Path) -> None:
    slug = f"onb_{uuid.uuid4().hex[:8]}"
    host = slug.replace("_", "-")  # host names take no underscore
    out = _run("create_tenant", "--slug", slug, "--name", "Onboarded Ltd",
               "--domain", f"{host}.localhost", "--domain", f"{host}-alt.localhost")  # fmt: skip
    try:
        assert f"tenant {slug} (Onboarded Ltd)" in out and " ready in " in out
        tenant = Tenant.objects.get(schema_name=slug)
        assert sorted(Domain.objects.filter(tenant=tenant).values_list("domain", "is_primary")) == [
            (f"{host}-alt.localhost", False),
            (f"{host}.localhost", True),
        ]
        with tenant_context(tenant):
            assert ModelCall.objects.count() == 0 and Message.objects.count() == 0  # tables exist, empty
            # The platform's default budgets and limits from the start, and the trail says so.
            policy = GatewayPolicy.objects.get()
            assert policy.daily_token_budget == settings.GATEWAY_DEFAULT_POLICY["daily_token_budget"]
            assert policy.default_model == settings.GATEWAY_DEFAULT_MODEL
            kinds = list(AuditEvent.objects.order_by("seq").values_list("kind", flat=True))
            assert kinds[:2] == ["gateway.policy_created", "tenant.created"]
        # Reachable on its own domain straight away.
        assert Client(HTTP_HOST=f"{host}.localhost").get("/chat/").status_code == 302
    finally:
        do_offboard_tenant(Tenant.objects.get(schema_name=slug), archive_dir=tmp_path, acting_label="test")


@pytest.mark.django_db
def test_create_tenant_rejects_a_bad_slug_clearly() -> None:
    with pytest.raises(CommandError, match="must start with a letter"):
        call_command("create_tenant", "--slug", "Bad-Slug", "--name", "x", "--domain", "bad.localhost")


def _run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- freeze --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_frozen_tenant_refuses_every_write_with_423_but_still_reads(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Still readable")
    do_freeze_tenant(acme, reason="INC-7: suspected credential leak", acting_label="ops")
    client = client_for(acme, alice)
    page = client.post("/chat/new/")
    assert page.status_code == 423 and "read-only for now" in page.content.decode()
    htmx = client.post(f"/chat/{conversation.id}/messages/", {"content": "hi"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 423 and htmx.content.decode() == TENANT_FROZEN_MESSAGE
    assert client.post(f"/chat/{conversation.id}/delete/").status_code == 423
    assert "Still readable" in client.get(f"/chat/{conversation.id}/").content.decode()
    assert client.post("/logout/").status_code == 302  # signing out still works
    with tenant_context(acme):
        conversation.refresh_from_db()
        assert conversation.deleted_at is None and conversation.messages.count() == 0
        frozen = AuditEvent.objects.filter(kind="tenant.frozen").latest("id")
    assert frozen.details == {"reason": "INC-7: suspected credential leak"}


@pytest.mark.django_db
def test_other_tenants_keep_working_while_one_is_frozen(acme: Tenant, globex: Tenant) -> None:
    do_freeze_tenant(acme, reason="incident", acting_label="ops")
    assert client_for(globex, make_member(globex)).post("/chat/new/").status_code == 302


@pytest.mark.django_db
def test_frozen_tenant_makes_no_model_calls_even_for_queued_work(acme: Tenant, sim: SimulatorControl) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
        _, pending = do_post_user_message(conversation, "queued before the freeze")
    do_freeze_tenant(acme, reason="incident", acting_label="ops")
    with tenant_context(acme):
        calls_before = ModelCall.objects.count()
        with pytest.raises(MessageRejected, match="read-only"):
            do_post_user_message(conversation, "sent after the freeze")
        do_generate_assistant_reply(pending.id)  # what the worker runs for the queued task
        pending.refresh_from_db()
        assert pending.status == Message.Status.FAILED and pending.error_for_user == TENANT_FROZEN_MESSAGE
        assert ModelCall.objects.count() == calls_before
    assert sim.requests() == []


@pytest.mark.django_db
def test_unfreeze_restores_writes_and_is_audited(acme: Tenant) -> None:
    alice = make_member(acme)
    do_freeze_tenant(acme, reason="incident", acting_label="ops")
    call_command("unfreeze_tenant", "--slug", "acme", "--reason", "resolved", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE
    assert client_for(acme, alice).post("/chat/new/").status_code == 302
    with tenant_context(acme):
        assert AuditEvent.objects.filter(kind="tenant.unfrozen", details__reason="resolved").exists()


@pytest.mark.django_db
def test_freeze_command_needs_a_known_tenant_and_unfreeze_an_actually_frozen_one(acme: Tenant) -> None:
    with pytest.raises(CommandError, match="No tenant"):
        call_command("freeze_tenant", "--slug", "initech", "--reason", "x")
    with pytest.raises(CommandError, match="not frozen"):
        call_command("unfreeze_tenant", "--slug", "acme")
    call_command("freeze_tenant", "--slug", "acme", "--reason", "drill", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.FROZEN


# --- offboarding ---------------------------------------------------------------------------------------------


@pytest.fixture
def doomed(committed_db: None, tenants: dict[str, Tenant]) -> Iterator[dict[str, Any]]:
    """A fresh tenant full of uniquely marked data, a signed-in session and a break-glass grant."""
    marker = uuid.uuid4().hex[:12]
    slug = f"gone_{marker[:8]}"
    tenant = do_create_tenant(slug=slug, name="Doomed Inc", domains=[f"canary-{marker}.localhost"])
    member = make_member(
        tenant, roles=[Role.TENANT_ADMIN.value], email=f"canary-user-{marker}@doomed.example"
    )
    with tenant_context(tenant):
        conversation = ConversationFactory.create(owner=member, title=f"canary-title-{marker}")
        MessageFactory.create(conversation=conversation, content=f"canary-message-{marker}")
        call = ModelCallFactory.create(user=member, response=f"canary-response-{marker}")
        do_record_audit_event(kind="test.canary", details={"note": f"canary-audit-{marker}"})
    session_client = client_for(tenant, member)
    staff = make_member(tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True)
    do_open_break_glass_grant(staff, tenant, reason=f"canary-reason-{marker} checking an incident", minutes=5)
    canaries = [f"canary-{marker}", f"canary-user-{marker}", f"canary-title-{marker}", f"canary-message-{marker}",
                f"canary-response-{marker}", f"canary-audit-{marker}", f"canary-reason-{marker}",
                str(conversation.id), str(call.id), str(call.request_id), member.subject]  # fmt: skip
    yield {
        "tenant": tenant,
        "slug": slug,
        "canaries": canaries,
        "session_key": session_client.session.session_key,
    }
    leftover = Tenant.objects.filter(schema_name=slug).first()
    if leftover is not None:  # the test failed before offboarding: clean up anyway
        do_offboard_tenant(leftover, archive_dir=Path("/tmp"), acting_label="cleanup")  # noqa: S108


def rows_mentioning(needles: list[str]) -> dict[str, int]:
    """Every table of every schema in the database, searched as text for each needle."""
    hits: dict[str, int] = {}
    patterns = [f"%{needle}%" for needle in needles]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        for schema, table in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" AS t WHERE t::text LIKE ANY(%s)',  # noqa: S608 - names from the catalogue
                [patterns],
            )
            count = cursor.fetchone()[0]
            if count:
                hits[f"{schema}.{table}"] = count
    return hits


def test_offboarding_exports_everything_then_leaves_no_row_anywhere(
    doomed: dict[str, Any], tmp_path: Path
) -> None:
    tenant, slug, canaries = doomed["tenant"], doomed["slug"], doomed["canaries"]
    assert rows_mentioning(canaries)  # the scan finds the data while the tenant exists
    assert TenantKey.objects.filter(tenant=tenant).exists()
    tenant_pk = tenant.pk
    tombstone = do_offboard_tenant(tenant, archive_dir=tmp_path, acting_label="test")
    # Crypto-shredding: no wrapped data key of the tenant is left in the public schema.
    assert not TenantKey.objects.filter(tenant_id=tenant_pk).exists()

    assert rows_mentioning(canaries) == {}
    assert not schema_exists(slug)
    assert not Tenant.objects.filter(schema_name=slug).exists()
    assert not Domain.objects.filter(domain__contains=slug).exists()
    assert not Session.objects.filter(session_key=doomed["session_key"]).exists()

    archive_path = tmp_path / tombstone.archive_name
    assert tombstone.slug == slug and tombstone.name == "Doomed Inc"
    assert tombstone.archive_sha256 == hashlib.sha256(archive_path.read_bytes()).hexdigest()
    with zipfile.ZipFile(archive_path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        everything = b"".join(archive.read(name) for name in archive.namelist()).decode()
    for canary in canaries:
        assert canary in everything, canary
    files = manifest["files"]
    assert files["chat_conversation"]["rows"] == 1 and files["gateway_modelcall"]["rows"] == 1
    assert files["platform/break_glass_grants.jsonl"]["rows"] == 1
    assert {"accounts_user", "audit_auditevent", "chat_message"} <= set(files)
    # Encrypted columns are written in the clear, JSON ones as the JSON they hold.
    with zipfile.ZipFile(archive_path) as archive:
        [call_row] = [
            json.loads(line) for line in archive.read("schema/gateway_modelcall.jsonl").splitlines()
        ]
    assert isinstance(call_row["messages"], list) and call_row["messages"][-1]["role"] == "user"
    assert not str(call_row["response"]).startswith("cs1:")


def test_offboard_command_asks_for_the_slug_and_refuses_the_platform(
    doomed: dict[str, Any], tmp_path: Path
) -> None:
    with (
        mock.patch("builtins.input", return_value="wrong"),
        pytest.raises(CommandError, match="Not confirmed"),
    ):
        call_command("offboard_tenant", "--slug", doomed["slug"], "--archive-dir", str(tmp_path))
    assert schema_exists(doomed["slug"])
    with pytest.raises(CommandError, match="No tenant"):
        call_command("offboard_tenant", "--slug", "public", "--yes")
    out = _run("offboard_tenant", "--slug", doomed["slug"], "--archive-dir", str(tmp_path), "--yes")
    assert "offboarded" in out and not schema_exists(doomed["slug"])
    assert TenantTombstone.objects.filter(slug=doomed["slug"]).exists()


# --- the same actions from Django admin ----------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_freeze_action_calls_the_lifecycle_action(acme: Tenant, tenants: dict[str, Tenant]) -> None:
    staff = make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, is_superuser=True
    )
    admin = client_for(tenants["public"], staff)
    response = admin.post(
        "/admin/tenants/tenant/", {"action": "freeze", "_selected_action": [acme.pk]}, follow=True
    )
    assert response.status_code == 200 and "Acme Corporation is frozen." in response.content.decode()
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.FROZEN
    with tenant_context(acme):
        assert AuditEvent.objects.filter(kind="tenant.frozen", actor_label__contains="Django admin").exists()


@pytest.mark.django_db
def test_admin_offboard_action_asks_for_the_slug_first(acme: Tenant, tenants: dict[str, Tenant]) -> None:
    staff = make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, is_superuser=True
    )
    admin = client_for(tenants["public"], staff)
    confirm = admin.post("/admin/tenants/tenant/", {"action": "offboard", "_selected_action": [acme.pk]})
    assert confirm.status_code == 200 and "Type the slug" in confirm.content.decode()
    wrong = admin.post(
        "/admin/tenants/tenant/",
        {"action": "offboard", "_selected_action": [acme.pk], "confirmed": "1", "confirm_slugs": "globex"},
    )
    assert wrong.status_code == 200 and schema_exists("acme")
    assert Tenant.objects.filter(pk=acme.pk).exists()


@pytest.mark.usefixtures("committed_db")
def test_admin_onboards_a_tenant_with_the_same_action_as_the_command(
    tenants: dict[str, Tenant], tmp_path: Path
) -> None:
    staff = make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, is_superuser=True
    )
    admin = client_for(tenants["public"], staff)
    form = admin.get("/admin/tenants/tenant/add/")
    assert form.status_code == 200 and "Onboard tenant" in form.content.decode()

    slug = f"adm_{uuid.uuid4().hex[:8]}"
    host = slug.replace("_", "-")
    refused = {
        "Use 2-41 characters": {"slug": "Bad-Slug", "name": "x", "domains": f"{host}.localhost"},
        "reserved for the platform": {"slug": "public", "name": "x", "domains": f"{host}.localhost"},
        "already exists": {"slug": "acme", "name": "x", "domains": f"{host}.localhost"},
        "Already used by another tenant: acme.localhost": {
            "slug": slug,
            "name": "x",
            "domains": "acme.localhost",
        },
        "Enter host names only": {"slug": slug, "name": "x", "domains": "https://evil.example/path"},
        "This field is required": {"slug": slug, "name": "x", "domains": "  \n "},
    }
    for message, data in refused.items():
        response = admin.post("/admin/tenants/tenant/add/", data)
        assert response.status_code == 200 and message in response.content.decode(), message
    assert not Tenant.objects.filter(schema_name=slug).exists() and not schema_exists(slug)

    created = admin.post(
        "/admin/tenants/tenant/add/",
        {"slug": slug, "name": "Admin Onboarded", "domains": f"{host}.localhost\n{host}-alt.localhost"},
        follow=True,
    )
    assert created.status_code == 200 and "Admin Onboarded is ready at" in created.content.decode()
    tenant = Tenant.objects.get(schema_name=slug)
    try:
        assert schema_exists(slug)
        assert Domain.objects.get(tenant=tenant, is_primary=True).domain == f"{host}.localhost"
        with tenant_context(tenant):
            assert GatewayPolicy.objects.exists()
            event = AuditEvent.objects.get(kind="tenant.created")
            assert "Django admin" in event.actor_label and event.details["domains"][0] == f"{host}.localhost"
    finally:
        do_offboard_tenant(tenant, archive_dir=tmp_path, acting_label="test")
