"""A curious end-user edits URLs, replays a session on another tenant's domain and forges tenant hints."""

import uuid

import pytest
from django_tenants.utils import tenant_context

from accounts.models import Role
from audit.models import AuditEvent
from chat.models import Conversation, Message
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_sign_in(acme: Tenant) -> None:
    response = client_for(acme).get("/chat/")
    assert response.status_code == 302
    assert response["Location"].startswith("/oidc/authenticate/")


def test_tenant_root_sends_anonymous_visitor_to_the_identity_provider(acme: Tenant) -> None:
    response = client_for(acme).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/oidc/authenticate/"


def test_unknown_domain_is_not_found(acme: Tenant) -> None:
    from django.test import Client

    assert Client(HTTP_HOST="initech.localhost").get("/chat/").status_code == 404


def test_conversation_list_shows_only_own_conversations_newest_first(acme: Tenant) -> None:
    alice, bob = make_member(acme), make_member(acme)
    with tenant_context(acme):
        older = ConversationFactory.create(owner=alice, title="Older topic")
        newer = ConversationFactory.create(owner=alice, title="Newer topic")
        ConversationFactory.create(owner=bob, title="Bob's secret plan")
    response = client_for(acme, alice).get("/chat/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Bob&#x27;s secret plan" not in body and "Bob's secret plan" not in body
    assert body.index(str(newer.id)) < body.index(str(older.id))


def test_end_user_cannot_open_colleagues_conversation(acme: Tenant) -> None:
    alice, bob = make_member(acme), make_member(acme)
    with tenant_context(acme):
        bobs = ConversationFactory.create(owner=bob, title="Bob only")
        bobs_message = MessageFactory.create(conversation=bobs, content="payroll numbers")
    client = client_for(acme, alice)
    colleague = client.get(f"/chat/{bobs.id}/")
    missing = client.get(f"/chat/{uuid.uuid4()}/")
    # Same answer for "not yours" and "does not exist": no existence oracle.
    assert colleague.status_code == missing.status_code == 404
    assert "Bob only" not in colleague.content.decode()
    assert colleague.templates[0].name == missing.templates[0].name == "404.html"
    assert client.get(f"/chat/{bobs.id}/messages/{bobs_message.id}/").status_code == 404
    assert client.post(f"/chat/{bobs.id}/messages/", {"content": "hi"}).status_code == 404
    with tenant_context(acme):
        assert Message.objects.filter(conversation=bobs).count() == 1


def test_message_of_another_conversation_is_not_found_through_own_conversation(acme: Tenant) -> None:
    alice, bob = make_member(acme), make_member(acme)
    with tenant_context(acme):
        own = ConversationFactory.create(owner=alice)
        bobs_message = MessageFactory.create(conversation=ConversationFactory.create(owner=bob))
    response = client_for(acme, alice).get(f"/chat/{own.id}/messages/{bobs_message.id}/")
    assert response.status_code == 404


def test_acme_session_on_globex_domain_is_refused_and_recorded(acme: Tenant, globex: Tenant) -> None:
    alice = make_member(acme)
    acme_client = client_for(acme, alice)
    session_cookie = acme_client.cookies["sessionid"].value
    replay = client_for(globex)
    replay.cookies["sessionid"] = session_cookie
    response = replay.get("/chat/")
    assert response.status_code == 403
    with tenant_context(globex):
        event = AuditEvent.objects.filter(kind="security.cross_tenant_session").latest("created_at")
        # globex learns that a session of another organisation was replayed, not whose (docs/identity.md).
        assert event.details == {
            "path": "/chat/",
            "ip": "127.0.0.1",
            "origin": "another organisation",
            "identity_ref": event.details["identity_ref"],
        }
        assert len(event.details["identity_ref"]) == 16


def test_same_person_id_in_another_schema_is_never_reached(acme: Tenant, globex: Tenant) -> None:
    """User ids are per schema: an acme session must not be resolved against globex's user table."""
    alice = make_member(acme)
    make_member(globex)  # some globex user may well share alice's primary key
    replay = client_for(globex)
    replay.cookies["sessionid"] = client_for(acme, alice).cookies["sessionid"].value
    assert replay.get("/").status_code == 403


def test_forged_tenant_hints_are_ignored(acme: Tenant, globex: Tenant) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    response = client.post(
        "/chat/new/?tenant=globex&schema=globex",
        {"tenant": "globex", "schema_name": "globex"},
        HTTP_X_TENANT="globex",
        HTTP_X_TENANT_ID="globex",
        HTTP_X_FORWARDED_HOST="globex.localhost",
    )
    assert response.status_code == 302
    conversation_id = response["Location"].split("/")[2]
    with tenant_context(acme):
        assert Conversation.objects.filter(id=conversation_id, owner=alice).exists()
    with tenant_context(globex):
        assert not Conversation.objects.filter(id=conversation_id).exists()
    listing = client.get("/chat/?tenant=globex", HTTP_X_TENANT="globex")
    assert listing.status_code == 200
    assert "Acme Corporation" in listing.content.decode()


def test_member_without_a_role_gets_403(acme: Tenant) -> None:
    nobody = make_member(acme, roles=[])
    assert client_for(acme, nobody).get("/chat/").status_code == 403


def test_tenant_member_session_is_not_platform_staff(acme: Tenant, tenants: dict[str, Tenant]) -> None:
    admin = make_member(acme, roles=[Role.TENANT_ADMIN.value])
    replay = client_for(tenants["public"])
    replay.cookies["sessionid"] = client_for(acme, admin).cookies["sessionid"].value
    assert replay.get("/admin/").status_code == 403


def test_empty_and_oversized_messages_get_a_clear_error(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
    client = client_for(acme, alice)
    empty = client.post(f"/chat/{conversation.id}/messages/", {"content": "   "})
    assert empty.status_code == 400
    assert empty.content.decode() == "Type a message first."
    huge = client.post(f"/chat/{conversation.id}/messages/", {"content": "x" * 8001})
    assert huge.status_code == 400
    assert "limited to 8000 characters" in huge.content.decode()
    with tenant_context(acme):
        assert not Message.objects.filter(conversation=conversation).exists()
