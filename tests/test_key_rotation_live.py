"""A tenant's data key is rotated while its people chat: nothing is lost, nothing stays under the old key."""

import threading
import time
import uuid
from typing import Any

import pytest
from django.db import connection, connections
from django_tenants.utils import tenant_context

from chat.models import Conversation, Message
from devtools.llm_simulator.testing import SimulatorControl
from keys.crypto import forget_cached_keys
from keys.models import TenantKey
from lifecycle.actions import do_create_tenant
from lifecycle.rotation import do_rotate_tenant_data_key
from tests.conftest import client_for, make_member

MESSAGES_PER_USER = 8
USERS = 2


@pytest.mark.usefixtures("committed_db", "worker")
def test_rotation_under_concurrent_chat_traffic_loses_nothing(sim: SimulatorControl, wait_for: Any) -> None:
    sim.set_scenario(reply_mode="echo", latency_ms=50)
    slug = f"live_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(
        slug=slug, name="Live Rotation Ltd", domains=[f"{slug.replace('_', '-')}.localhost"]
    )
    people = [make_member(tenant) for _ in range(USERS)]
    history_owner = people[0]
    with tenant_context(tenant):
        old_conversation = Conversation.objects.create(owner=history_owner)
        history = [f"older message {i} written before the rotation" for i in range(30)]
        for text in history:
            Message.objects.create(conversation=old_conversation, role="user", content=text)

    clients = [client_for(tenant, person) for person in people]
    sent: dict[str, list[str]] = {}
    failures: list[str] = []

    def chat(index: int) -> None:
        try:
            client = clients[index]
            conversation_id = client.post("/chat/new/")["Location"].split("/")[2]
            sent[conversation_id] = []
            for number in range(MESSAGES_PER_USER):
                text = f"person {index} message {number} {uuid.uuid4().hex[:6]}"
                response = client.post(f"/chat/{conversation_id}/messages/", {"content": text})
                if response.status_code != 200:
                    failures.append(f"{text}: HTTP {response.status_code}")
                sent[conversation_id].append(text)
                time.sleep(0.35)
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            failures.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=chat, args=(index,)) for index in range(USERS)]
    for thread in threads:
        thread.start()

    def traffic_flowing() -> bool:
        with tenant_context(tenant):
            return Message.objects.count() > len(history) + USERS

    wait_for(traffic_flowing, timeout=30, message="chat traffic before the rotation")
    report = do_rotate_tenant_data_key(tenant, log=lambda line: None)
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert report.old_key_ids == [1] and report.new_key_id == 2
    # Rows written by the live traffic under the old key were re-encrypted too, not only the history.
    assert report.rows_reencrypted > len(history)
    print(f"rotation report: {report}")

    expected_replies = USERS * MESSAGES_PER_USER

    def all_answered() -> bool:
        with tenant_context(tenant):
            return (
                Message.objects.filter(role="assistant", status=Message.Status.DONE).count()
                == expected_replies
            )

    wait_for(all_answered, timeout=60, message="every reply")
    forget_cached_keys()
    with tenant_context(tenant):
        assert not Message.objects.filter(status=Message.Status.FAILED).exists()
        assert (
            list(Message.objects.filter(conversation=old_conversation).values_list("content", flat=True))
            == history
        )
        for conversation_id, texts in sent.items():
            thread_messages = list(
                Message.objects.filter(conversation_id=conversation_id).order_by("created_at")
            )
            assert [m.content for m in thread_messages if m.role == "user"] == texts
            assert [m.content for m in thread_messages if m.role == "assistant"] == [
                f"Echo: {t}" for t in texts
            ]
        # Nothing is left under the old key (rows written during the rotation included), and it is retired.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT split_part(content, ':', 2), count(*) FROM chat_message WHERE content <> '' GROUP BY 1"
            )
            assert dict(cursor.fetchall()) == {"2": len(history) + 2 * expected_replies}
    states = dict(TenantKey.objects.filter(tenant=tenant).values_list("key_id", "state"))
    assert states == {1: TenantKey.State.RETIRED, 2: TenantKey.State.ACTIVE}
