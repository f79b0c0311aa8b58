"""A message sent through the web is answered by a real Celery worker process through the gateway."""

import uuid
from typing import Any

import pytest
from django_tenants.utils import schema_context, tenant_context

from chat.models import Conversation, Message
from chat.tasks import generate_assistant_reply
from devtools.llm_simulator.testing import SimulatorControl
from gateway.models import ModelCall
from tenants.models import Tenant
from tenants.task_context import TenantContextMissing
from tests.conftest import client_for, make_member


@pytest.mark.usefixtures("committed_db", "worker")
def test_message_sent_through_the_web_creates_exactly_one_model_call_in_that_tenant(
    acme: Tenant, globex: Tenant, sim: SimulatorControl, wait_for: Any
) -> None:
    sim.set_scenario(reply="Answer from the worker.")
    alice = make_member(acme)
    client = client_for(acme, alice)
    conversation_id = client.post("/chat/new/")["Location"].split("/")[2]
    response = client.post(f"/chat/{conversation_id}/messages/", {"content": "Where is my order?"})
    assert response.status_code == 200

    def answered() -> Message | None:
        with tenant_context(acme):
            return Message.objects.filter(
                conversation_id=conversation_id, role=Message.Role.ASSISTANT, status=Message.Status.DONE
            ).first()

    reply = wait_for(answered, timeout=30, message="the worker's answer")
    assert reply.content == "Answer from the worker."
    with tenant_context(acme):
        calls = list(ModelCall.objects.filter(request_id=reply.request_id))
        assert len(calls) == 1
        assert calls[0].user_id == alice.pk
        assert calls[0].messages[-1] == {"role": "user", "content": "Where is my order?"}
    with tenant_context(globex):
        assert not ModelCall.objects.filter(request_id=reply.request_id).exists()
    with schema_context("public"):
        # The public schema has no model-call table at all: tenant data cannot land there.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("select to_regclass('public.gateway_modelcall')")
            assert cursor.fetchone() == (None,)
    page = client.get(f"/chat/{conversation_id}/messages/{reply.id}/")
    assert "Answer from the worker." in page.content.decode()
    assert "hx-get" not in page.content.decode()


@pytest.mark.django_db
def test_reply_task_refuses_to_run_without_a_tenant(acme: Tenant) -> None:
    with schema_context("public"), pytest.raises(TenantContextMissing):
        generate_assistant_reply("acme", str(uuid.uuid4()))


@pytest.mark.django_db
def test_reply_task_refuses_to_run_in_another_tenant(acme: Tenant, globex: Tenant) -> None:
    with tenant_context(globex), pytest.raises(TenantContextMissing):
        generate_assistant_reply("acme", str(uuid.uuid4()))


@pytest.mark.django_db
def test_failed_model_call_leaves_a_readable_message(acme: Tenant, sim: SimulatorControl) -> None:
    from chat.actions import do_generate_assistant_reply

    sim.set_scenario(fail="503")
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = Conversation.objects.create(owner=alice)
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content="hello")
        pending = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            status=Message.Status.PENDING,
            request_id=uuid.uuid4(),
        )
        do_generate_assistant_reply(pending.id)
        pending.refresh_from_db()
    assert pending.status == Message.Status.FAILED
    assert pending.error_for_user == "The assistant is unavailable right now. Please try again."


@pytest.mark.usefixtures("committed_db", "worker")
def test_task_sent_from_outside_a_tenant_fails_loudly_in_the_worker(acme: Tenant, wait_for: Any) -> None:
    from tests.support.processes import log_tail

    message_id = str(uuid.uuid4())
    with schema_context("public"):
        # Sent from the public schema: the header carries no tenant, so the worker stays in public.
        task_id = generate_assistant_reply.delay("acme", message_id).id
    refusal = f"generate_assistant_reply[{task_id}] raised unexpected: TenantContextMissing"
    wait_for(
        lambda: refusal in log_tail("worker", 400),
        timeout=20,
        message="the worker to refuse the task",
    )


@pytest.mark.django_db
def test_an_unexpected_error_in_the_worker_fails_the_reply_instead_of_leaving_it_pending(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chat.tasks

    def simulated_bug(message_id: uuid.UUID) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(chat.tasks, "do_generate_assistant_reply", simulated_bug)
    alice = make_member(acme)
    with tenant_context(acme):
        conversation = Conversation.objects.create(owner=alice)
        pending = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            status=Message.Status.PENDING,
            request_id=uuid.uuid4(),
        )
        with pytest.raises(RuntimeError, match="simulated bug"):
            generate_assistant_reply("acme", str(pending.id))
        pending.refresh_from_db()
    assert pending.status == Message.Status.FAILED
    assert pending.error_for_user == "Something went wrong while answering. Please try again."
