"""End-users rename, delete (soft, purged after the retention period) and export their own conversations."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from chat.models import Conversation, Message
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_owner_renames_a_conversation(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Old")
    response = client_for(acme, alice).post(
        f"/chat/{conversation.id}/rename/", {"title": "  Travel   plans "}
    )
    assert response.status_code == 302
    with tenant_context(acme):
        conversation.refresh_from_db()
    assert conversation.title == "Travel plans"


def test_empty_name_is_refused_with_a_message_and_keeps_the_old_one(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Keep me")
    client = client_for(acme, alice)
    response = client.post(f"/chat/{conversation.id}/rename/", {"title": "   "}, follow=True)
    assert "Give the conversation a name." in response.content.decode()
    htmx = client.post(f"/chat/{conversation.id}/rename/", {"title": ""}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400 and htmx.content.decode() == "Give the conversation a name."
    with tenant_context(acme):
        conversation.refresh_from_db()
    assert conversation.title == "Keep me"


def test_deleted_conversation_disappears_for_its_owner_at_once(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Regrettable")
    client = client_for(acme, alice)
    response = client.post(f"/chat/{conversation.id}/delete/", follow=True)
    assert response.status_code == 200 and "Deleted" in response.content.decode()
    assert str(conversation.id) not in client.get("/chat/").content.decode()
    assert client.get(f"/chat/{conversation.id}/").status_code == 404
    assert client.get(f"/chat/{conversation.id}/export.json").status_code == 404
    assert client.post(f"/chat/{conversation.id}/messages/", {"content": "hello?"}).status_code == 404
    with tenant_context(acme):
        assert Conversation.objects.get(id=conversation.id).deleted_at is not None  # kept until the purge


@override_settings(CHAT_DELETED_RETENTION_DAYS=30)
def test_purge_removes_conversations_deleted_longer_ago_than_the_retention(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        expired = ConversationFactory.create(owner=alice, deleted_at=timezone.now() - timedelta(days=31))
        MessageFactory.create(conversation=expired)
        recent = ConversationFactory.create(owner=alice, deleted_at=timezone.now() - timedelta(days=29))
        alive = ConversationFactory.create(owner=alice)
    call_command("purge_deleted_conversations")
    with tenant_context(acme):
        remaining = set(Conversation.objects.filter(owner=alice).values_list("id", flat=True))
        assert not Message.objects.filter(conversation_id=expired.id).exists()
    assert remaining == {recent.id, alive.id}


def test_owner_exports_json_and_markdown(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Refund policy")
        MessageFactory.create(conversation=conversation, role=Message.Role.USER, content="What is it?")
        MessageFactory.create(conversation=conversation, role=Message.Role.ASSISTANT, content="**30 days**")
    client = client_for(acme, alice)
    exported = client.get(f"/chat/{conversation.id}/export.json")
    assert exported.status_code == 200 and exported["Content-Type"] == "application/json"
    assert exported["Content-Disposition"].startswith('attachment; filename="refund-policy-')
    data = json.loads(exported.content)
    assert data["title"] == "Refund policy"
    assert [(m["role"], m["content"]) for m in data["messages"]] == [
        ("user", "What is it?"),
        ("assistant", "**30 days**"),
    ]
    markdown = client.get(f"/chat/{conversation.id}/export.md")
    text = markdown.content.decode()
    assert markdown["Content-Type"].startswith("text/markdown")
    assert text.startswith("# Refund policy") and "## You" in text and "**30 days**" in text
    assert client.get(f"/chat/{conversation.id}/export.pdf").status_code == 404


def test_colleagues_conversation_cannot_be_renamed_deleted_or_exported(acme: Tenant) -> None:
    alice, bob = make_member(acme), make_member(acme)
    with tenant_context(acme):
        bobs = ConversationFactory.create(owner=bob, title="Bob only")
    client = client_for(acme, alice)
    assert client.post(f"/chat/{bobs.id}/rename/", {"title": "mine now"}).status_code == 404
    assert client.post(f"/chat/{bobs.id}/delete/").status_code == 404
    assert client.get(f"/chat/{bobs.id}/export.json").status_code == 404
    assert client.get(f"/chat/{bobs.id}/export.md").status_code == 404
    with tenant_context(acme):
        bobs.refresh_from_db()
    assert bobs.title == "Bob only" and bobs.deleted_at is None
