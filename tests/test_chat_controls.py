"""The chat's controls through HTTP and their actions (the browser drives them in
tests/e2e/test_browser_chat_controls.py): one answer at a time, Regenerate, Edit and resend, Stop, the model
picker, search over encrypted conversations, titles, and the banner shown when the assistant is off."""

import uuid
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from chat.actions import (
    REPLY_BUSY_MESSAGE,
    MessageRejected,
    clean_generated_title,
    do_generate_assistant_reply,
    do_generate_conversation_title,
    do_start_conversation,
    search_conversations,
    title_from_text,
)
from chat.models import Conversation, Message
from devtools.llm_simulator.testing import SimulatorControl
from gateway import policy as gateway_policy
from gateway.models import ModelCall
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def thread(conversation: Conversation) -> list[tuple[str, str, str]]:
    return [(m.role, m.status, m.content) for m in conversation.messages.order_by("created_at")]


def answered(conversation: Conversation, question: str, answer: str) -> tuple[Message, Message]:
    asked = MessageFactory.create(conversation=conversation, role=Message.Role.USER, content=question)
    reply = MessageFactory.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content=answer, request_id=uuid.uuid4()
    )
    return asked, reply


def test_a_second_question_waits_for_the_answer_being_written(acme: Tenant) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
    assert client.post(f"/chat/{conversation.id}/messages/", {"content": "First"}).status_code == 200
    refused = client.post(f"/chat/{conversation.id}/messages/", {"content": "Second"})
    assert (refused.status_code, refused.content.decode()) == (400, REPLY_BUSY_MESSAGE)
    with tenant_context(acme):
        assert [content for _, _, content in thread(conversation)] == ["First", ""]


def test_regenerate_replaces_only_the_last_answer(acme: Tenant) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
        _, old_reply = answered(conversation, "Q1", "A1")
        _, last_reply = answered(conversation, "Q2", "A2")
    refused = client.post(
        f"/chat/{conversation.id}/messages/{old_reply.id}/regenerate/", HTTP_HX_REQUEST="true"
    )
    assert (refused.status_code, refused.content.decode()) == (
        400,
        "Only the last answer can be written again.",
    )
    response = client.post(
        f"/chat/{conversation.id}/messages/{last_reply.id}/regenerate/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    with tenant_context(acme):
        assert thread(conversation) == [
            ("user", "done", "Q1"), ("assistant", "done", "A1"), ("user", "done", "Q2"), ("assistant", "pending", "")
        ]  # fmt: skip
        new_reply = conversation.messages.order_by("created_at").last()
    assert new_reply is not None and new_reply.id != last_reply.id
    # The new pending answer comes back in the re-rendered thread, ready to stream.
    assert f'id="message-{new_reply.id}"' in response.content.decode()
    assert "data-stream-url" in response.content.decode()


def test_edit_and_resend_replaces_everything_after_the_edited_message(acme: Tenant) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Q1 typo")
        first, _ = answered(conversation, "Q1 typo", "A1")
        answered(conversation, "Q2", "A2")
    path = f"/chat/{conversation.id}/messages/{first.id}/edit/"
    assert client.post(path, {"content": "  "}).status_code == 400  # "Type a message first.", nothing lost
    assert client.post(path, {"content": "Q1 fixed"}, HTTP_HX_REQUEST="true").status_code == 200
    with tenant_context(acme):
        assert thread(conversation) == [("user", "done", "Q1 fixed"), ("assistant", "pending", "")]
        first.refresh_from_db()
        conversation.refresh_from_db()
    assert first.edited_at is not None
    assert conversation.title == "Q1 fixed"  # the first message's title follows the edit...


def test_a_renamed_conversation_keeps_its_name_through_an_edit(acme: Tenant) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
        first, _ = answered(conversation, "Q1", "A1")
    client.post(f"/chat/{conversation.id}/rename/", {"title": "Holiday plans"})
    client.post(f"/chat/{conversation.id}/messages/{first.id}/edit/", {"content": "Q1 again"})
    with tenant_context(acme):
        conversation.refresh_from_db()
    assert (conversation.title, conversation.title_set_by_user) == ("Holiday plans", True)


def test_a_colleague_cannot_stop_regenerate_edit_or_switch_the_model(acme: Tenant, globex: Tenant) -> None:
    alice, bob = make_member(acme), make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
        question, reply = answered(conversation, "Mine", "Yours to read only")
    bob_client = client_for(acme, bob)
    base = f"/chat/{conversation.id}"
    for path, data in [
        (f"{base}/messages/{reply.id}/stop/", {}),
        (f"{base}/messages/{reply.id}/regenerate/", {}),
        (f"{base}/messages/{question.id}/edit/", {"content": "Hijacked"}),
        (f"{base}/model/", {"model": "sim-model"}),
    ]:
        assert bob_client.post(path, data).status_code == 404, path
        assert client_for(globex, make_member(globex)).post(path, data).status_code == 404, path
    assert bob_client.get("/chat/search/", {"q": "Yours"}).content.decode().count("Yours to read only") == 0
    with tenant_context(acme):
        assert thread(conversation) == [("user", "done", "Mine"), ("assistant", "done", "Yours to read only")]


def test_stop_before_the_worker_starts_makes_no_model_call(acme: Tenant, sim: SimulatorControl) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice)
        MessageFactory.create(conversation=conversation, role=Message.Role.USER, content="Never mind")
        reply = MessageFactory.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            status=Message.Status.PENDING,
            content="",
            request_id=uuid.uuid4(),
        )
    response = client_for(acme, alice).post(
        f"/chat/{conversation.id}/messages/{reply.id}/stop/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 202
    assert gateway_policy.stop_requested(acme.schema_name, reply.request_id)  # type: ignore[arg-type]
    with tenant_context(acme):
        do_generate_assistant_reply(reply.id)
        reply.refresh_from_db()
        assert not ModelCall.objects.filter(request_id=reply.request_id).exists()
    assert (reply.status, reply.content) == (Message.Status.STOPPED, "")
    assert [r for r in sim.requests() if r["path"].endswith("/chat/completions")] == []


def test_model_picker_accepts_the_allow_list_only_and_the_answer_uses_it(
    acme: Tenant, sim: SimulatorControl
) -> None:
    alice = make_member(acme)
    client = client_for(acme, alice)
    home = client.get("/chat/").content.decode()
    assert '<option value="sim-model" selected>sim-model (default)</option>' in home
    assert 'value="sim-embedding"' not in home  # an embedding model is not a chat model
    refused = client.post("/chat/new/", {"model": "gpt-17-ultra", "content": "Hello"})
    assert refused.status_code == 400
    assert "That model is not available in this workspace." in refused.content.decode()
    assert ">Hello</textarea>" in refused.content.decode()  # what was typed is kept
    with tenant_context(acme):
        assert not Conversation.objects.filter(owner=alice).exists()  # nothing half-created

    sim.set_scenario(reply="From the local model.")
    response = client.post("/chat/new/", {"model": "smollm2", "content": "Hello"})
    assert response.status_code == 302
    with tenant_context(acme):
        conversation = Conversation.objects.get(owner=alice)
        reply = conversation.messages.get(role=Message.Role.ASSISTANT)
        assert conversation.model == "smollm2"
        bad = client.post(
            f"/chat/{conversation.id}/model/", {"model": "sim-unpriced"}, HTTP_HX_REQUEST="true"
        )
        assert (bad.status_code, bad.content.decode()) == (
            400,
            "That model is not available in this workspace.",
        )
        assert client.post(f"/chat/{conversation.id}/model/", {"model": "sim-model"}).status_code == 302
        conversation.refresh_from_db()
        assert conversation.model == "sim-model"
        do_generate_assistant_reply(reply.id)  # in process, as the worker would
        assert reply.request_id is not None
        record = ModelCall.objects.get(request_id=reply.request_id)
    assert record.model_requested == "sim-model"


def test_search_matches_every_word_in_titles_and_messages_of_ones_own_live_conversations(
    acme: Tenant,
) -> None:
    alice, bob = make_member(acme), make_member(acme)
    word = f"wombat{uuid.uuid4().hex[:6]}"
    with tenant_context(acme):
        hiking = ConversationFactory.create(owner=alice, title="Weekend plans")
        answered(hiking, f"Where can I see a {word} while hiking?", "In the Blue Mountains.")
        titled = ConversationFactory.create(owner=alice, title=f"All about the {word.upper()}")
        gone = ConversationFactory.create(owner=alice, title=f"Deleted {word}")
        gone.deleted_at = gone.created_at
        gone.save(update_fields=["deleted_at"])
        ConversationFactory.create(owner=bob, title=f"Bob's {word} hiking notes")
        # Stored encrypted: the words are not in the database in the clear.
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM chat_message WHERE content LIKE %s", [f"%{word}%"])
            assert cursor.fetchone() == (0,)

        assert {hit.conversation.id for hit in search_conversations(alice, word)} == {hiking.id, titled.id}
        [hit] = search_conversations(alice, f"HIKING {word}")
        assert hit.conversation.id == hiking.id and hit.conversation.title == "Weekend plans"
        assert (word, True) in hit.snippet and ("hiking", True) in hit.snippet
        [by_title] = search_conversations(alice, f"all about {word}")
        assert by_title.in_title and by_title.conversation.id == titled.id
        assert search_conversations(alice, f"{word} volcano") == []
        assert search_conversations(alice, "   ") == []
    page = client_for(acme, alice).get("/chat/search/", {"q": word}, HTTP_HX_REQUEST="true").content.decode()
    assert page.count("data-search-hit=") == 2 and f"<mark>{word}</mark>" in page and "Bob" not in page


def test_titles_from_the_first_message_are_clean_and_cut_at_a_word() -> None:
    assert (
        title_from_text("## How do I **reset** my password?\n\nI tried twice.")
        == "How do I reset my password?"
    )
    assert title_from_text("   \n> quote first line\nsecond") == "quote first line"
    long = title_from_text(
        "Please help me plan a three week trip through the national parks of the south west"
    )
    assert long.endswith("…") and len(long) <= 61 and not long[:-1].endswith(" ")
    assert clean_generated_title('Title: "Resetting your password."\nExtra line') == "Resetting your password"
    assert clean_generated_title("**Trip planning**") == "Trip planning"


def test_a_generated_title_replaces_the_first_message_one_unless_renamed(
    acme: Tenant, sim: SimulatorControl, settings: Any
) -> None:
    settings.CHAT_GENERATED_TITLES = True
    sim.set_scenario(reply='Title: "Parking at the Acme office."')
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = ConversationFactory.create(owner=alice, title="Where do I park when I visit")
        answered(conversation, "Where do I park when I visit?", "Garage B, level 2.")
        assert do_generate_conversation_title(conversation.id) == "Parking at the Acme office"
        conversation.refresh_from_db()
        assert conversation.title == "Parking at the Acme office"
        # One recorded, budgeted call, made idempotent by the conversation: a redelivery calls nobody.
        record = ModelCall.objects.get(source="chat:title")
        assert record.request_id == uuid.uuid5(conversation.id, "title") and record.user_id == alice.pk
        do_generate_conversation_title(conversation.id)
        assert ModelCall.objects.filter(source="chat:title").count() == 1

        renamed = ConversationFactory.create(owner=alice, title="My own name", title_set_by_user=True)
        answered(renamed, "Q", "A")
        assert do_generate_conversation_title(renamed.id) == ""
        renamed.refresh_from_db()
        assert renamed.title == "My own name"


def test_start_conversation_with_a_refused_first_message_creates_nothing(acme: Tenant) -> None:
    alice = make_member(acme)
    with tenant_context(acme):
        with pytest.raises(MessageRejected):
            do_start_conversation(alice, first_message="x" * 9000)
        assert not Conversation.objects.filter(owner=alice).exists()
