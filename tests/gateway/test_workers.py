"""The gateway under real Celery worker processes: a budget race across two workers, exactly-once after a
worker is SIGKILLed mid-call, and the kill switch reaching a worker at once. Each test uses its own queue
and its own workers, so the session's shared worker never takes these tasks."""

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from chat.models import Conversation, Message
from chat.tasks import generate_assistant_reply
from devtools.llm_simulator.testing import SimulatorControl
from gateway import policy as gateway_policy
from gateway.actions import do_set_budget, do_set_kill_switch
from gateway.config import get_model_route
from gateway.models import ModelCall
from tenants.models import Tenant
from tests.factories import UserFactory
from tests.support import processes

pytestmark = pytest.mark.usefixtures("committed_db")


@pytest.fixture
def start_workers(stack_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, queue: str, *, concurrency: int = 1, pool: str = "prefork", **env: str) -> Any:
        process = processes.start_worker(
            name,
            {**stack_env, "CELERY_TASK_DEFAULT_QUEUE": queue, **env},
            concurrency=concurrency,
            extra_args=("--pool", pool),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        processes.stop(process)


def pending_replies(tenant: Tenant, count: int, text: str = "Plan my week.") -> list[Message]:
    """`count` conversations, each with a user message and a pending assistant reply, from distinct users."""
    replies = []
    with tenant_context(tenant):
        for _ in range(count):
            conversation = Conversation.objects.create(owner=UserFactory.create())
            Message.objects.create(conversation=conversation, role=Message.Role.USER, content=text)
            replies.append(
                Message.objects.create(
                    conversation=conversation,
                    role=Message.Role.ASSISTANT,
                    status=Message.Status.PENDING,
                    request_id=uuid.uuid4(),
                )
            )
    return replies


def enqueue(tenant: Tenant, replies: list[Message], queue: str) -> None:
    # Sent from inside the tenant: tenant-schemas-celery puts the schema in the message headers.
    with tenant_context(tenant):
        for reply in replies:
            generate_assistant_reply.apply_async(args=(tenant.schema_name, str(reply.id)), queue=queue)


def finished(tenant: Tenant, replies: list[Message]) -> list[Message] | None:
    with tenant_context(tenant):
        rows = list(
            Message.objects.filter(id__in=[r.id for r in replies]).exclude(status=Message.Status.PENDING)
        )
    return rows if len(rows) == len(replies) else None


def test_64_concurrent_requests_on_two_workers_never_overspend_the_budget(
    fresh_tenant: Tenant, sim: SimulatorControl, start_workers: Any, wait_for: Any
) -> None:
    sim.set_scenario(prompt_tokens=20, completion_tokens=30, latency_ms=400)
    replies = pending_replies(fresh_tenant, 64)
    with tenant_context(fresh_tenant):
        history = [
            {"role": "system", "content": settings.CHAT_SYSTEM_PROMPT},
            {"role": "user", "content": "Plan my week."},
        ]
        worst_case = get_model_route("sim-model").counter.prompt_bound(history) + 128
        budget = 1000  # about 6 worst cases in flight, about 20 settled calls: far fewer than 64
        assert worst_case * 3 < budget < worst_case * 64
        do_set_budget(daily_tokens=budget)
    queue = f"gw-race-{uuid.uuid4().hex[:8]}"
    # Threads: 2 worker processes x 32 threads = 64 calls in flight at once, racing for the same counters.
    start_workers("race-a", queue, concurrency=32, pool="threads")
    start_workers("race-b", queue, concurrency=32, pool="threads")
    enqueue(fresh_tenant, replies, queue)
    done = wait_for(lambda: finished(fresh_tenant, replies), timeout=120, message="64 replies")

    with tenant_context(fresh_tenant):
        calls = list(ModelCall.objects.filter(request_id__in=[r.request_id for r in replies if r.request_id]))
        usage = gateway_policy.usage_snapshot(fresh_tenant.schema_name)
    ok = [c for c in calls if c.status == ModelCall.Status.OK]
    refused = [c for c in calls if c.status == ModelCall.Status.REFUSED]
    assert len(calls) == 64 and len(ok) + len(refused) == 64
    # The chat streams its replies: this is the race on gateway.streaming.stream, across two processes.
    assert {c.source for c in calls} == {"chat"} and all(c.ttft_ms is not None for c in ok)
    assert ok and refused
    recorded_tokens = sum(c.tokens_in + c.tokens_out for c in ok)
    assert recorded_tokens <= budget
    assert usage.day_tokens == recorded_tokens and usage.open_reservations == 0
    assert all(c.error_code == "budget_exceeded" and "daily token budget" in c.error for c in refused)
    failed_messages = [m for m in done if m.status == Message.Status.FAILED]
    assert len(failed_messages) == len(refused)
    assert all(
        m.error_for_user.startswith("This workspace has used its daily token budget") for m in failed_messages
    )
    # The provider saw exactly the calls that were let through.
    assert len([e for e in sim.requests() if e["path"] == "/v1/chat/completions"]) == len(ok)
    for name in ("race-a", "race-b"):
        assert "model call" in processes.log_tail(name, 2000), f"{name} took part in the race"


def test_worker_killed_mid_call_is_redelivered_and_recorded_exactly_once_without_leaking_the_reservation(
    fresh_tenant: Tenant, sim: SimulatorControl, start_workers: Any, wait_for: Any
) -> None:
    sim.set_scenario(latency_ms=4000, reply="Too late.")
    (reply,) = pending_replies(fresh_tenant, 1)
    assert reply.request_id is not None
    queue = f"gw-once-{uuid.uuid4().hex[:8]}"
    # The first worker holds the call's lease for 3 s: long enough to be killed while it owns it.
    first = start_workers("once-a", queue, GATEWAY_LEASE_SECONDS="3")
    enqueue(fresh_tenant, [reply], queue)

    def provider_called() -> bool:
        return any(e["path"] == "/v1/chat/completions" for e in sim.requests())

    wait_for(provider_called, timeout=30, message="the provider call")
    with tenant_context(fresh_tenant):
        started = ModelCall.objects.get(request_id=reply.request_id)
        assert started.status == ModelCall.Status.STARTED and started.source == "chat"
        assert gateway_policy.open_reservations(fresh_tenant.schema_name) == [str(reply.request_id)]
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, mid-call, no chance to ack
    first.wait(timeout=10)
    time.sleep(1.5)
    # Redis redelivers an unacknowledged task once its visibility timeout has passed; a worker restores
    # such tasks when it starts. The second worker uses a 1 s visibility timeout instead of 300 s.
    start_workers("once-b", queue, CELERY_VISIBILITY_TIMEOUT="1")

    def reply_failed() -> Message | None:
        with tenant_context(fresh_tenant):
            return Message.objects.filter(id=reply.id, status=Message.Status.FAILED).first()

    failed = wait_for(reply_failed, timeout=60, message="the redelivered task")
    with tenant_context(fresh_tenant):
        records = list(ModelCall.objects.filter(request_id=reply.request_id))
        usage = gateway_policy.usage_snapshot(fresh_tenant.schema_name)
    assert len(records) == 1
    assert (records[0].status, records[0].error_code) == (ModelCall.Status.ERROR, "interrupted")
    assert (
        failed.error_for_user
        == "The assistant was interrupted while answering this message. Please send it again."
    )
    assert len([e for e in sim.requests() if e["path"] == "/v1/chat/completions"]) == 1
    assert usage.open_reservations == 0 and usage.day_tokens == 0
    assert "generate_assistant_reply" in processes.log_tail("once-b", 400)  # the second worker ran it


def test_kill_switch_reaches_a_running_worker_at_once_and_the_chat_says_why(
    fresh_tenant: Tenant, sim: SimulatorControl, start_workers: Any, wait_for: Any
) -> None:
    queue = f"gw-kill-{uuid.uuid4().hex[:8]}"
    start_workers("kill-a", queue)
    before, after = pending_replies(fresh_tenant, 2)
    enqueue(fresh_tenant, [before], queue)
    wait_for(lambda: finished(fresh_tenant, [before]), timeout=60, message="the first reply")
    with tenant_context(fresh_tenant):
        do_set_kill_switch(on=True, reason="Budget review.", actor_label="tester")
    enqueue(fresh_tenant, [after], queue)
    (refused,) = wait_for(lambda: finished(fresh_tenant, [after]), timeout=60, message="the second reply")
    assert refused.status == Message.Status.FAILED
    assert refused.error_for_user == (
        "The assistant has been switched off for this workspace by an administrator. Reason: Budget review."
    )
    assert len([e for e in sim.requests() if e["path"] == "/v1/chat/completions"]) == 1
