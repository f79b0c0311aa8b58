"""Role matrix, generated from the URL confs: every tenant route and every platform page × six principals,
each with its exact status. A new route fails here until it has an access rule (and, for POST routes and
platform pages, a declared outcome)."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.models import AuditExport
from gateway.api.actions import do_create_api_key
from incidents.actions import do_open_incident
from incidents.models import Incident, IncidentTenant
from incidents.tenant.models import TenantNotice
from knowledge.crypto_seam import encrypt_for_tenant
from knowledge.models import Chunk, Document, DocumentVersion, KnowledgeBase
from prompts.models import PlaygroundRun
from tenants.models import BreakGlassGrant, Tenant
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory, MessageFactory, ModelCallFactory, PromptVersionFactory
from tests.test_access_rules import LIBRARY_VIEWS, walk

pytestmark = pytest.mark.django_db

PRINCIPALS = [
    "anonymous",
    "end_user",
    "tenant_admin",
    "other_tenant_admin",
    "platform_admin_without_grant",
    "platform_admin_with_grant",
]

# What an allowed member gets where it is not a plain 200 page: redirects, and POST routes with an empty form
# (every POST route must be listed).
ALLOWED_OUTCOMES = {
    "console:home": 302,  # the console opens on its usage page
    "chat:new": 302,  # creates a conversation, redirects to it
    "chat:send": 400,  # "Type a message first."
    "chat:rename": 302,  # back to the conversation with the error shown
    "chat:delete": 302,  # back to the list
    "chat:model": 302,  # blank = the workspace's default model; back to the conversation
    "chat:stop": 400,  # the sample message is a question: "Only an answer can be stopped."
    "chat:regenerate": 400,  # the sample message is a question: "Only the last answer can be written again."
    "chat:edit": 400,  # "Type a message first."
    "audit:start_export": 400,  # the window is missing
    "audit:download_export": 404,  # the sample export is not ready yet: nothing to download
    "audit:set_redaction": 400,  # no policy chosen
    "prompts:diff": 400,  # which versions to compare is missing from the query
    "prompts:export": 200,  # the zip download
    "prompts:import": 400,  # "Choose a zip file to import."
    "prompts:details": 302,  # back to the template with the error shown
    "prompts:label_move": 302,  # back to the history with the error shown
    "prompts:label_remove": 302,
    "prompts:playground_run": 400,  # "Choose the version to try."
    "knowledge:create": 400,  # the form again, with "give it a name"
    "knowledge:settings": 400,
    "knowledge:delete": 302,  # back to the list
    "knowledge:upload": 400,  # "Choose at least one file."
    "knowledge:new_version": 400,
    "knowledge:delete_document": 200,  # the refreshed document list (htmx)
    "knowledge:query": 400,  # "Type a question."
    "console:budgets_save": 400,  # every budget is required: the form again with the errors
    "console:kill_switch_set": 400,  # "Choose whether to switch the assistant off or back on."
    "console:models_save": 400,  # "Allow at least one model (use the kill switch to stop all calls)."
    "console:fallbacks_save": 400,  # "Choose the model whose fallbacks you are setting."
    "console:api_key_create": 400,  # "Give the key a name, so you can tell it apart later."
    "console:api_key_revoke": 302,  # revoked, back to the list
    "incidents:acknowledge": 302,  # acknowledged, back to the incidents page
    "incidents:thresholds": 400,  # every number is required: the page again with the error
    "incidents:revoke": 400,  # not confirmed: nothing revoked, the page again with the error
}

# Platform pages: the outcome for each platform principal (tenant sessions: 403, anonymous: sign-in).
PLATFORM_OUTCOMES = {
    "platform:usage": {"platform_admin_without_grant": 200, "platform_admin_with_grant": 200},
    "platform:break_glass": {"platform_admin_without_grant": 200, "platform_admin_with_grant": 200},
    # Someone else's grant looks like a missing one; the holder reads (and is audited).
    "platform:grant_conversations": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_conversation": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_model_calls": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_model_call": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_prompts": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_prompt": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_knowledge_bases": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_knowledge_base": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    "platform:grant_exports": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    # Posted without a window: the form's clear 400 (the export itself is tested in test_break_glass_more).
    "platform:grant_start_export": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 400},
    "platform:grant_export_row": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 200},
    # The sample export is not ready yet: nothing to download.
    "platform:grant_download_export": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 404},
    "platform:close_grant": {"platform_admin_without_grant": 404, "platform_admin_with_grant": 302},
    "incidents:list": {"platform_admin_without_grant": 200, "platform_admin_with_grant": 200},
    "incidents:detail": {"platform_admin_without_grant": 200, "platform_admin_with_grant": 200},
    "incidents:status_admin": {"platform_admin_without_grant": 200, "platform_admin_with_grant": 200},
    # Empty forms: back to the page with the error shown.
    **{
        f"incidents:{name}": {"platform_admin_without_grant": 302, "platform_admin_with_grant": 302}
        for name in ("status", "note", "review", "notice", "remediate", "postmortem", "status_update")
    },
}


@dataclass
class World:
    acme: Tenant
    clients: dict[str, Client]
    members: dict[str, User]
    grant: BreakGlassGrant


@pytest.fixture
def world(acme: Tenant, globex: Tenant, tenants: dict[str, Tenant]) -> World:
    public = tenants["public"]
    members = {
        "end_user": make_member(acme, roles=[Role.END_USER.value]),
        "tenant_admin": make_member(acme, roles=[Role.TENANT_ADMIN.value]),
        "other_tenant_admin": make_member(globex, roles=[Role.TENANT_ADMIN.value]),
        "platform_admin_without_grant": make_member(public, roles=[Role.PLATFORM_ADMIN.value], is_staff=True),
        "platform_admin_with_grant": make_member(public, roles=[Role.PLATFORM_ADMIN.value], is_staff=True),
    }
    clients = {"anonymous": client_for(acme)}
    for name, user in members.items():
        home = {"other_tenant_admin": globex}.get(name, public if name.startswith("platform") else acme)
        clients[name] = client_for(home, user)
    now = timezone.now()
    grant = BreakGlassGrant.objects.create(
        staff=members["platform_admin_with_grant"],
        tenant=acme,
        reason="Matrix test: reading to check the access rules",
        opened_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    return World(acme=acme, clients=clients, members=members, grant=grant)


def sample_kwargs(pattern: URLPattern, owner: User, world: World) -> dict[str, Any]:
    """Real objects owned by `owner` for each URL parameter, so allowed principals reach the page itself."""
    names = set(pattern.pattern.regex.groupindex)  # named groups: path converters and re_path alike
    values: dict[str, Any] = {}
    with tenant_context(world.acme):
        conversation = ConversationFactory.create(owner=owner)
        if "conversation_id" in names:
            values["conversation_id"] = conversation.id
        if "message_id" in names:
            values["message_id"] = MessageFactory.create(conversation=conversation).id
        if "call_id" in names:
            values["call_id"] = ModelCallFactory.create(user=owner).id
    if "section" in names:
        values["section"] = "api-keys"
    if "key_id" in names:
        with tenant_context(world.acme):
            values["key_id"] = do_create_api_key(name="Matrix key", acting_user=None).api_key.id
    if "export_format" in names:
        values["export_format"] = "json"
    if names & {"template_id", "number", "batch"}:
        with tenant_context(world.acme):
            version = PromptVersionFactory.create()
            if "batch" in names:
                values["batch"] = PlaygroundRun.objects.create(
                    batch=uuid.uuid4(), side="candidate", template=version.template, version=version,
                    model="sim-model", user_message="hi", created_by=owner,
                ).batch  # fmt: skip
        values["template_id"] = version.template_id
        if "number" in names:
            values["number"] = version.number
    if names & {"knowledge_base_id", "document_id", "chunk_id"}:
        values.update({key: value for key, value in knowledge_sample(world).items() if key in names})
    if "export_id" in names:
        with tenant_context(world.acme):
            now = timezone.now()
            values["export_id"] = AuditExport.objects.create(
                window_start=now - timedelta(days=1), window_end=now, redaction_policy="full"
            ).id
    if "model" in names:
        values["model"] = "sim-model"
    if "path" in names:
        values["path"] = "no/such/endpoint"
    if "grant_id" in names:
        values["grant_id"] = world.grant.pk
    if names & {"incident_id", "notice_id"}:
        incident = do_open_incident(
            kind=Incident.Kind.OTHER, title="Matrix incident", detected_by="matrix", notify_platform=False,
            tenants=[(world.acme.schema_name, IncidentTenant.Role.AFFECTED)],
        )  # fmt: skip
        values["incident_id"] = incident.pk
        if "notice_id" in names:
            with tenant_context(world.acme):
                values["notice_id"] = TenantNotice.objects.create(
                    incident_id=incident.pk, reference=incident.reference, subject="s", body="b", sent_by_label="m"
                ).pk
            values.pop("incident_id")
    unknown = names - set(values)
    assert not unknown, f"{pattern.name}: add a sample value for URL parameter(s) {sorted(unknown)}"
    return values


def knowledge_sample(world: World) -> dict[str, Any]:
    """A knowledge base used in chat, with one document and one searchable passage."""
    with tenant_context(world.acme):
        knowledge_base = KnowledgeBase.objects.create(
            name=f"Matrix {uuid.uuid4().hex[:8]}",
            embedding_model="local-minilm",
            embedding_dimension=384,
            use_in_chat_by_default=True,
        )
        document = Document.objects.create(knowledge_base=knowledge_base, name="handbook.txt")
        version = DocumentVersion.objects.create(
            document=document, number=1, file_name="handbook.txt", size_bytes=5, sha256="0" * 64
        )
        chunk = Chunk.objects.create(
            knowledge_base=knowledge_base,
            document=document,
            version=version,
            ordinal=0,
            text_token=encrypt_for_tenant("Matrix passage."),
            embedding_model="local-minilm",
            dimension=384,
            embedding=[1.0] + [0.0] * 383,
            searchable=True,
        )
    return {"knowledge_base_id": knowledge_base.id, "document_id": document.id, "chunk_id": chunk.id}


def method_of(client: Client, url: str, host: str) -> str:
    """GET unless the view only takes other methods (its 405 names them, before any access check)."""
    response = client.get(url, HTTP_HOST=host)
    if response.status_code == 405:
        return response["Allow"].split(",")[0].strip().lower()
    return "get"


def tenant_routes() -> list[tuple[str, URLPattern]]:
    return [
        (name, pattern)
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name not in LIBRARY_VIEWS and getattr(pattern.callback, "tenant_access", None) != "public"
    ]


def platform_routes() -> list[tuple[str, URLPattern]]:
    routes = [
        (name, pattern)
        for name, pattern in walk(get_resolver("convosuite.urls_public").url_patterns)
        if getattr(pattern.callback, "platform_page", False)
    ]
    # Closing the grant ends it: check it after the pages that read under it.
    return sorted(routes, key=lambda route: route[0] == "platform:close_grant")


def expected_on_tenant_domain(
    name: str, rule: frozenset[str] | str, principal: str, method: str, hidden: bool = False
) -> int:
    if rule == "api":
        # The API takes bearer credentials only: a browser session is no credential there (401), and a
        # session bound to another tenant or the platform is refused by the session guard first (403).
        return 401 if principal in {"anonymous", "end_user", "tenant_admin"} else 403
    if principal == "anonymous":
        return 302
    if principal in {"other_tenant_admin", "platform_admin_without_grant", "platform_admin_with_grant"}:
        return 403  # session bound to another tenant (or the platform): refused by the session guard
    if principal not in rule:
        return 404 if hidden else 403
    if name in ALLOWED_OUTCOMES:
        return ALLOWED_OUTCOMES[name]
    assert method == "get", f"{name}: declare the outcome of an empty {method.upper()} in ALLOWED_OUTCOMES"
    return 200


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_tenant_route_answers_each_principal_exactly(world: World, principal: str) -> None:
    host = "acme.localhost"
    owner = world.members["tenant_admin" if principal == "tenant_admin" else "end_user"]
    results, expected = {}, {}
    for name, pattern in tenant_routes():
        rule = pattern.callback.tenant_access  # type: ignore[attr-defined]
        url = reverse(name, kwargs=sample_kwargs(pattern, owner, world), urlconf="convosuite.urls")
        method = method_of(Client(), url, host)
        response = getattr(world.clients[principal], method)(url, HTTP_HOST=host)
        results[name] = response.status_code
        hidden = getattr(pattern.callback, "hidden_from_other_roles", False)
        expected[name] = expected_on_tenant_domain(name, rule, principal, method, hidden)
    assert results == expected


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_platform_page_answers_each_principal_exactly(world: World, principal: str) -> None:
    host = "localhost"
    with tenant_context(world.acme):
        owner = world.members["end_user"]
    assert {name for name, _ in platform_routes()} == set(PLATFORM_OUTCOMES), (
        "declare each platform page's outcomes"
    )
    results, expected = {}, {}
    for name, pattern in platform_routes():
        url = reverse(name, kwargs=sample_kwargs(pattern, owner, world), urlconf="convosuite.urls_public")
        method = method_of(Client(), url, host)
        response = getattr(world.clients[principal], method)(url, HTTP_HOST=host)
        results[name] = response.status_code
        if principal == "anonymous":
            expected[name] = 302
        elif not principal.startswith("platform"):
            expected[name] = 403
        else:
            expected[name] = PLATFORM_OUTCOMES[name][principal]
    assert results == expected


def test_console_and_platform_routes_are_in_the_matrix() -> None:
    names = {name for name, _ in tenant_routes()} | {name for name, _ in platform_routes()}
    assert {"console:usage", "console:model_calls", "console:members", "console:audit"} <= names
    assert {"console:budgets", "console:kill_switch", "console:models", "console:api_keys"} <= names
    assert {"platform:grant_conversation", "platform:grant_model_call"} <= names
