"""Prompt, message and response text never reaches a log at INFO or above, whoever logs it."""

import logging
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from chat.actions import do_generate_assistant_reply
from chat.models import Message
from convosuite.log_redaction import REDACTED, remember_sensitive_text
from devtools.llm_simulator.testing import SimulatorControl
from gateway import screening
from lifecycle.actions import do_create_tenant
from prompts.actions import VersionDraft, do_create_prompt_template
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.support.processes import LOG_DIR


def canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    return {
        "prompt": f"PROMPT-CANARY-{tag} never repeat this instruction",
        "message": f"MESSAGE-CANARY-{tag} my salary question",
        "reply": f"REPLY-CANARY-{tag} the answer text",
    }


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            parts.append(record.getMessage())
            parts.append(record.exc_text or "")
            if record.exc_info:
                parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts) + caplog.text


def test_library_loggers_that_may_print_bodies_are_withheld(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    secret = f"request body with {uuid.uuid4()}"
    logging.getLogger("LiteLLM").warning("POST Request Sent: %s", secret)
    logging.getLogger("httpx").error(f"raw f-string {secret}")
    assert secret not in everything_logged(caplog)
    assert "LiteLLM log text withheld" in caplog.text


def test_registered_text_is_redacted_from_any_logger_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    secret = f"the confidential prompt {uuid.uuid4()}\nwith a second line that is long"
    remember_sensitive_text(secret)
    some_library = logging.getLogger("some.library.nobody.configured")
    some_library.info("sending %r", secret)
    some_library.warning("second line only: with a second line that is long")
    try:
        raise ValueError(f"provider rejected: {secret}")
    except ValueError:
        some_library.exception("call failed")
    logged = everything_logged(caplog)
    assert "confidential prompt" not in logged and "second line that is long" not in logged
    assert REDACTED in logged
    assert "ValueError" in logged  # the traceback is kept, minus the text
    # DEBUG is left alone (never enabled outside a developer's machine) and short texts are not registered.
    remember_sensitive_text("short")
    some_library.info("a short word")
    assert "a short word" in caplog.text


def start_canary_round(tenant: Tenant, sim: SimulatorControl, texts: dict[str, str]) -> tuple[Any, str]:
    sim.set_scenario(reply=texts["reply"])
    admin = make_member(tenant, roles=["tenant_admin", "end_user"])
    with tenant_context(tenant):
        agent = do_create_prompt_template(
            name=f"Canary {uuid.uuid4().hex[:6]}",
            description="",
            draft=VersionDraft(
                body=texts["prompt"], model="sim-model", temperature=Decimal("0.5"), max_tokens=64
            ),
            acting_user=admin,
        )
    client = client_for(tenant, admin)
    conversation_id = client.post("/chat/new/", {"agent": str(agent.id)})["Location"].split("/")[2]
    assert client.post(f"/chat/{conversation_id}/messages/", {"content": texts["message"]}).status_code == 200
    return client, conversation_id


@pytest.mark.django_db
def test_full_chat_round_in_process_logs_no_canary(
    acme: Tenant, sim: SimulatorControl, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger at INFO, LiteLLM's included, as a careless operator might configure it.
    caplog.set_level(logging.INFO)
    for name in ("LiteLLM", "LiteLLM Router", "httpx", "openai"):
        caplog.set_level(logging.INFO, logger=name)
    texts = canaries()
    _client, conversation_id = start_canary_round(acme, sim, texts)
    with tenant_context(acme):
        pending = Message.objects.get(conversation_id=conversation_id, role="assistant")
        do_generate_assistant_reply(pending.id)
        pending.refresh_from_db()
    assert pending.content == texts["reply"]
    sent = sim.requests()[-1]["body"]["messages"]
    assert screening.unplant(sent[0]["content"]) == texts["prompt"] and sent[-1]["content"] == texts["message"]
    logged = everything_logged(caplog)
    assert "model stream ok" in logged or "model call ok" in logged  # logging was captured at all
    for name, text in texts.items():
        assert text not in logged, f"{name} text reached the logs"


@pytest.mark.usefixtures("committed_db", "worker")
def test_full_chat_round_through_the_worker_logs_no_canary(sim: SimulatorControl, wait_for: Any) -> None:
    # Its own tenant: what this test commits must not show up in other tests' tenants.
    suffix = uuid.uuid4().hex[:8]
    tenant = do_create_tenant(slug=f"logs_{suffix}", name="Logs Ltd", domains=[f"logs-{suffix}.localhost"])
    texts = canaries()
    _client, conversation_id = start_canary_round(tenant, sim, texts)

    def answered() -> Message | None:
        with tenant_context(tenant):
            return Message.objects.filter(
                conversation_id=conversation_id, role="assistant", status=Message.Status.DONE
            ).first()

    reply = wait_for(answered, timeout=30, message="the worker's answer")
    assert reply.content == texts["reply"]
    worker_log = (LOG_DIR / "worker.log").read_text(errors="replace")
    # The worker's log did capture this round at INFO (so the absence below means something).
    assert f"request_id={reply.request_id}" in worker_log
    for name, text in texts.items():
        assert text not in worker_log, f"{name} text reached the worker's log"
