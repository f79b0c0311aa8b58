"""Model-call records are encrypted at rest (messages, response, tool calls, error) and stay evidence: the
chain commits to the plaintext, so exports verify, and key rotation may rewrite a sealed row's ciphertext
(and nothing else) without breaking its chain."""

import datetime as dt
import importlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import find_chain_breaks
from devtools.llm_simulator.testing import SimulatorControl
from evidence.signing import platform_key
from gateway.exports import write_model_call_export
from gateway.models import ModelCall
from gateway.service import complete
from keys.crypto import encrypt_text, forget_cached_keys
from keys.migration_helpers import allow_reencryption_of_sealed_rows
from lifecycle.actions import do_create_tenant
from lifecycle.rotation import do_rotate_tenant_data_key
from tenants.models import Tenant
from tests.audit.helpers import load_verifier, read_export

verifier = load_verifier()
TEXT_COLUMNS = ("messages", "response", "tool_calls", "error")


def make_call(tenant: Tenant, canary: str) -> ModelCall:
    request_id = uuid.uuid4()
    complete(
        tenant_schema=tenant.schema_name,
        request_id=request_id,
        user_id=None,
        model="sim-model",
        messages=[
            {"role": "system", "content": f"You are the {canary} assistant. Never reveal {canary}."},
            {"role": "user", "content": "What is the plan?"},
        ],
    )
    return ModelCall.objects.get(request_id=request_id)


def raw_rows(call_ids: list[uuid.UUID]) -> list[str]:
    """The rows as a database dump shows them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM gateway_modelcall t WHERE id = ANY(%s)", [call_ids])
        return [row[0] for row in cursor.fetchall()]


def raw_values(call_id: uuid.UUID) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT messages, response, tool_calls, error FROM gateway_modelcall WHERE id = %s", [call_id]
        )
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(TEXT_COLUMNS, row, strict=True))


def export_and_verify(tmp_path: Path, name: str, since: dt.datetime) -> list[dict]:
    key_file = tmp_path / "key.pem"
    key_file.write_text(platform_key().public_key_pem)
    path = tmp_path / name
    write_model_call_export(
        out_path=str(path),
        window_start=since,
        window_end=timezone.now() + dt.timedelta(minutes=5),
        redaction="full",
        exported_by="test",
    )
    report, _stats, _complete = verifier.verify(str(path), key_file.read_bytes())
    assert report.problems == []
    lines, _manifest, _signature = read_export(path)
    return lines


@pytest.mark.django_db
def test_a_database_dump_reveals_no_prompt_or_answer_of_a_model_call(
    chain_tenant: Tenant, sim: SimulatorControl, tmp_path: Path
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    sim.set_scenario(reply=f"The plan, {canary}, stays between us.")
    with tenant_context(chain_tenant):
        since = timezone.now() - dt.timedelta(seconds=1)
        call = make_call(chain_tenant, canary)

        [dumped] = raw_rows([call.id])
        assert canary not in dumped
        stored = raw_values(call.id)
        assert stored["messages"].startswith("cs1:") and stored["response"].startswith("cs1:")
        # Read through the model, the record is whole again (the console's detail page reads it so).
        assert canary in call.messages[0]["content"] and canary in call.response
        assert call.tool_calls == [] and stored["tool_calls"] == ""  # an empty default is stored blank

        # The signed export shows the plaintext and verifies: the chain committed to the plaintext.
        [line] = [
            line
            for line in export_and_verify(tmp_path, "dump.zip", since)
            if line["fields"]["id"] == str(call.id)
        ]
        assert canary in line["sensitive"]["messages"]["value"][0]["content"]
        assert canary in line["sensitive"]["response"]["value"]


@pytest.mark.django_db
def test_a_sealed_call_may_change_its_ciphertext_in_a_reencryption_and_nothing_else(
    chain_tenant: Tenant, sim: SimulatorControl
) -> None:
    sim.set_scenario(reply="Sealed answer text.")
    with tenant_context(chain_tenant):
        call = make_call(chain_tenant, "sealed")
        same_text_new_ciphertext = encrypt_text("Sealed answer text.")

        def update(statement: str, params: list[Any], *, reencrypting: bool) -> None:
            with transaction.atomic(), connection.cursor() as cursor:
                if reencrypting:
                    allow_reencryption_of_sealed_rows(cursor)
                cursor.execute(statement, params)

        refused: list[tuple[str, list[Any], bool]] = [
            (
                "UPDATE gateway_modelcall SET response = %s WHERE id = %s",
                [same_text_new_ciphertext, call.id],
                False,
            ),
            ("UPDATE gateway_modelcall SET tokens_in = 999 WHERE id = %s", [call.id], True),
            (
                "UPDATE gateway_modelcall SET response = %s, cost = 0 WHERE id = %s",
                [same_text_new_ciphertext, call.id],
                True,
            ),
            ("DELETE FROM gateway_modelcall WHERE id = %s", [call.id], True),
        ]
        for statement, params, reencrypting in refused:
            with pytest.raises(DatabaseError, match="append-only evidence"):
                update(statement, params, reencrypting=reencrypting)

        update(
            "UPDATE gateway_modelcall SET response = %s WHERE id = %s",
            [same_text_new_ciphertext, call.id],
            reencrypting=True,
        )
        assert raw_values(call.id)["response"] == same_text_new_ciphertext
        assert ModelCall.objects.get(id=call.id).response == "Sealed answer text."
        assert list(find_chain_breaks(ModelCall)) == []


@pytest.mark.usefixtures("committed_db")
def test_rotating_the_key_reencrypts_sealed_model_calls_and_their_chain_still_verifies(
    sim: SimulatorControl, tmp_path: Path
) -> None:
    slug = f"rotcalls_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(slug=slug, name="Rotate calls Ltd", domains=[f"{slug}.localhost"])
    canary = f"canary-{uuid.uuid4().hex}"
    sim.set_scenario(reply=f"Answer about {canary}.")
    with tenant_context(tenant):
        since = timezone.now() - dt.timedelta(seconds=1)
        calls = [make_call(tenant, canary) for _ in range(3)]
        assert {raw_values(call.id)["messages"].split(":")[1] for call in calls} == {"1"}

    report = do_rotate_tenant_data_key(tenant, log=lambda line: None)

    assert "gateway_modelcall.messages" in report.columns and "gateway_modelcall.error" in report.columns
    forget_cached_keys()
    with tenant_context(tenant):
        for call in calls:
            stored = raw_values(call.id)
            assert stored["messages"].split(":")[1] == "2" and stored["response"].split(":")[1] == "2"
        assert all(canary not in row for row in raw_rows([call.id for call in calls]))
        assert list(find_chain_breaks(ModelCall)) == []
        lines = export_and_verify(tmp_path, "rotated.zip", since)
        assert len(lines) == 3
        assert all(canary in line["sensitive"]["response"]["value"] for line in lines)


@pytest.mark.usefixtures("committed_db")
def test_the_migration_encrypts_sealed_model_calls_stored_as_plaintext(sim: SimulatorControl) -> None:
    migration = importlib.import_module("gateway.migrations.0009_encrypt_model_call_text")
    slug = f"legacycalls_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(slug=slug, name="Legacy calls Ltd", domains=[f"{slug}.localhost"])
    sim.set_scenario(reply="Written before encryption existed.")
    with tenant_context(tenant):
        call = make_call(tenant, "legacy")
        # The row as the previous schema stored it: plaintext JSON and text.
        with transaction.atomic(), connection.cursor() as cursor:
            allow_reencryption_of_sealed_rows(cursor)
            cursor.execute(
                "UPDATE gateway_modelcall SET messages = %s, response = %s, tool_calls = '[]' WHERE id = %s",
                [json.dumps(call.messages), call.response, call.id],
            )
        assert raw_values(call.id)["response"] == "Written before encryption existed."

        class Editor:
            pass

        editor = Editor()
        editor.connection = connection  # type: ignore[attr-defined]
        with transaction.atomic():
            migration.encrypt_existing(None, editor)

        stored = raw_values(call.id)
        assert all(stored[column].startswith("cs1:") for column in ("messages", "response", "tool_calls"))
        reread = ModelCall.objects.get(id=call.id)
        assert reread.messages == call.messages and reread.response == "Written before encryption existed."
        # The chain committed to the plaintext when the row was sealed: it still verifies.
        assert list(find_chain_breaks(ModelCall)) == []
