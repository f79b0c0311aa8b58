"""Chat answers stream end to end: web → Celery worker → gateway.stream → Redis → web (SSE) → reader.

Everything runs as real processes (the `stack`); the reader here is `requests` with the session cookie of a
tenant-bound session, speaking to the live web process as a browser's EventSource would."""

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from django.conf import settings
from django.test import Client
from django_tenants.utils import tenant_context

from chat.live import stream_key
from chat.models import Message
from gateway.models import ModelCall
from tenants.models import Tenant
from tests.conftest import Stack, client_for, make_member

pytestmark = pytest.mark.usefixtures("committed_db")

REPLY = "Our refund policy gives you thirty days to return any item, no questions asked."


def ask(client: Client, question: str) -> tuple[str, str]:
    conversation_id = client.post("/chat/new/")["Location"].split("/")[2]
    page = client.post(f"/chat/{conversation_id}/messages/", {"content": question}).content.decode()
    match = re.search(r'id="message-([0-9a-f-]{36})" data-role="assistant"', page)
    assert match, page
    return conversation_id, match.group(1)


def sse_events(
    stack: Stack, client: Client, tenant: str, path: str, headers: dict[str, str] | None = None
) -> Iterator[tuple[str, Any]]:
    """Server-sent events of a live GET, parsed; comments and retry hints are skipped. The event id, when
    there is one, is added to the data as "_id"."""
    response = requests.get(
        f"http://127.0.0.1:{stack.web_port}{path}",
        headers={
            "Host": f"{tenant}.localhost:{stack.web_port}",
            "Accept": "text/event-stream",
            **(headers or {}),
        },
        cookies={settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value},
        stream=True,
        timeout=30,
    )
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/event-stream")
    event, data, event_id = "message", "", ""
    with response:
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("id: "):
                event_id = line.removeprefix("id: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and data:
                yield event, {**json.loads(data), "_id": event_id}
                event, data, event_id = "message", "", ""


def stream_path(conversation_id: str, message_id: str) -> str:
    return f"/chat/{conversation_id}/messages/{message_id}/stream/"


@pytest.mark.usefixtures("stack")
def test_tokens_are_relayed_as_they_come_then_the_rendered_message(
    stack: Stack, acme: Tenant, globex: Tenant
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=REPLY.replace("refund policy", "**refund policy**"), token_delay_ms=80)
    alice = make_member(acme)
    client = client_for(acme, alice)
    conversation_id, message_id = ask(client, "What is the refund policy?")

    tokens: list[tuple[float, str]] = []
    final_html = ""
    for event, data in sse_events(stack, client, "acme", stream_path(conversation_id, message_id)):
        if event == "token":
            tokens.append((time.monotonic(), data["text"]))
        elif event == "done":
            final_html = data["html"]
            done_at = time.monotonic()
            break
    assert "".join(text for _, text in tokens) == REPLY.replace("refund policy", "**refund policy**")
    assert len(tokens) >= 10
    # Streamed, not delivered in one piece at the end: the first token came long before the last.
    assert done_at - tokens[0][0] > 0.5
    assert 'data-status="done"' in final_html
    assert "<strong>refund policy</strong>" in final_html
    with tenant_context(acme):
        message = Message.objects.get(id=message_id)
        assert message.request_id is not None
        call = ModelCall.objects.get(request_id=message.request_id)
    assert message.status == Message.Status.DONE
    assert call.status == ModelCall.Status.OK and call.ttft_ms is not None
    with tenant_context(globex):
        assert not ModelCall.objects.filter(request_id=message.request_id).exists()


@pytest.mark.usefixtures("stack")
def test_a_late_subscriber_gets_the_whole_answer(
    stack: Stack, acme: Tenant, wait_for: Callable[..., Any]
) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=REPLY, token_delay_ms=60)
    alice = make_member(acme)
    client = client_for(acme, alice)
    conversation_id, message_id = ask(client, "What is the refund policy?")
    with tenant_context(acme):
        request_id = Message.objects.get(id=message_id).request_id
    assert request_id is not None
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # Join while the answer is half written: the relay replays what was already said.
    wait_for(lambda: broker.xlen(stream_key("acme", request_id)) >= 5, timeout=30, message="a few tokens")
    events = list(sse_events(stack, client, "acme", stream_path(conversation_id, message_id)))
    assert "".join(data["text"] for event, data in events if event == "token") == REPLY
    assert events[-1][0] == "done"

    # After the end (even once the Redis stream is gone) the stored answer is sent at once.
    broker.delete(stream_key("acme", request_id))
    (only,) = list(sse_events(stack, client, "acme", stream_path(conversation_id, message_id)))
    assert only[0] == "done" and REPLY in only[1]["html"]


@pytest.mark.usefixtures("stack")
def test_a_reconnecting_browser_resumes_after_the_last_event_it_saw(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=REPLY, token_delay_ms=150)
    client = client_for(acme, make_member(acme))
    conversation_id, message_id = ask(client, "What is the refund policy?")
    path = stream_path(conversation_id, message_id)
    first: list[dict[str, str]] = []
    for event, data in sse_events(stack, client, "acme", path):
        if event == "token":
            first.append(data)
        if len(first) == 3:
            break  # the connection drops here
    # EventSource reconnects with the id of the last event it saw and gets only what came after it.
    resumed = list(sse_events(stack, client, "acme", path, {"Last-Event-ID": first[-1]["_id"]}))
    assert resumed[-1][0] == "done"
    rest = "".join(data["text"] for event, data in resumed if event == "token")
    assert "".join(token["text"] for token in first) + rest == REPLY
    assert rest, "the answer should still have been streaming when the browser came back"


@pytest.mark.usefixtures("stack")
def test_a_failed_answer_ends_the_stream_with_the_reason(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(fail="503")
    alice = make_member(acme)
    client = client_for(acme, alice)
    conversation_id, message_id = ask(client, "Anyone there?")
    events = list(sse_events(stack, client, "acme", stream_path(conversation_id, message_id)))
    assert [event for event, _ in events] == ["done"]
    assert 'data-status="failed"' in events[0][1]["html"]
    assert "unavailable" in events[0][1]["html"]


@pytest.mark.usefixtures("stack")
def test_colleague_and_other_tenant_cannot_open_the_stream(
    stack: Stack, acme: Tenant, globex: Tenant
) -> None:
    stack.simulator.reset()
    alice, bob = make_member(acme), make_member(acme)
    alice_client = client_for(acme, alice)
    conversation_id, message_id = ask(alice_client, "Private question")
    path = stream_path(conversation_id, message_id)
    bob_client = client_for(acme, bob)
    assert bob_client.get(path).status_code == 404
    carol_client = client_for(globex, make_member(globex))
    assert carol_client.get(path).status_code == 404
    assert client_for(acme).get(path).status_code == 302  # not signed in: sent to sign-in
    assert client_for(acme, alice).get(stream_path(conversation_id, str(uuid.uuid4()))).status_code == 404


@pytest.mark.usefixtures("committed_db")
@pytest.mark.usefixtures("stack")
def test_kill_switch_cuts_a_running_chat_stream_and_says_why(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=" ".join(f"w{i}" for i in range(200)), token_delay_ms=50)
    client = client_for(acme, make_member(acme))
    conversation_id, message_id = ask(client, "Talk for a long time")
    tokens = 0
    try:
        for event, data in sse_events(stack, client, "acme", stream_path(conversation_id, message_id)):
            if event == "token":
                tokens += 1
                if tokens == 5:
                    set_kill_switch(acme, on=True)
            elif event == "done":
                assert 'data-status="failed"' in data["html"]
                # The reader is told what happened and the administrator's reason.
                assert KILL_SWITCH_MESSAGE in data["html"]
                break
    finally:
        set_kill_switch(acme, on=False)
    assert 5 <= tokens < 200
    with tenant_context(acme):
        message = Message.objects.get(id=message_id)
        assert message.request_id is not None
        assert ModelCall.objects.get(request_id=message.request_id).status == ModelCall.Status.CUT_OFF


@pytest.mark.django_db
def test_relay_of_a_finished_message_is_one_done_event_and_keys_are_per_tenant(acme: Tenant) -> None:
    from chat.live import relay_reply
    from tests.factories import MessageFactory

    with tenant_context(acme):
        message = MessageFactory.create(role=Message.Role.ASSISTANT, content="Done already.")
        events = list(relay_reply("acme", message, lambda current: f"<p>{current.content}</p>"))
    assert events == ['event: done\ndata: {"html":"<p>Done already.</p>"}\n\n']
    request_id = uuid.uuid4()
    assert stream_key("acme", request_id) != stream_key("globex", request_id)


def test_a_retried_task_starts_the_published_reply_over() -> None:
    from chat.live import ReplyPublisher

    request_id = uuid.uuid4()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    first_attempt = ReplyPublisher("acme", request_id)
    first_attempt.restart()
    first_attempt.token("half an ans")
    second_attempt = ReplyPublisher("acme", request_id)
    second_attempt.restart()
    second_attempt.token("A whole answer.")
    second_attempt.end("done")
    entries: Any = broker.xrange(stream_key("acme", request_id))
    assert [fields[b"type"] for _, fields in entries] == [b"reset", b"token", b"end"]
    assert entries[1][1][b"text"] == b"A whole answer."
    assert 0 < broker.ttl(stream_key("acme", request_id)) <= 15 * 60
    broker.delete(stream_key("acme", request_id))


KILL_SWITCH_MESSAGE = (
    "The assistant has been switched off for this workspace by an administrator. "
    "Reason: Paused for the kill-switch test."
)


def set_kill_switch(tenant: Tenant, *, on: bool) -> None:
    from gateway.actions import do_set_kill_switch

    with tenant_context(tenant):
        do_set_kill_switch(on=on, reason="Paused for the kill-switch test.", actor_label="test")
