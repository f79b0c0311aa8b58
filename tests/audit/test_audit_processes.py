"""Audit evidence across real processes: two Celery workers appending to one chain, beat fan-out to every
tenant, the console's export flow through a worker, retention pruning, and the verifier in a clean
virtualenv that has nothing but `cryptography`."""

import datetime as dt
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.actions import do_record_audit_event
from audit.chain import find_chain_breaks, read_head
from audit.models import AuditEvent, AuditExport, ChainCheckpoint
from audit.tasks import checkpoint_every_tenant
from chat.actions import do_post_user_message, do_start_conversation
from chat.models import Message
from devtools.llm_simulator.testing import SimulatorControl
from evidence.signing import platform_key
from gateway.models import ModelCall
from gateway.service import complete
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.audit.helpers import VERIFIER_PATH, load_verifier, make_calls
from tests.conftest import client_for, make_member
from tests.support import processes

LOCK_FILE = Path(__file__).resolve().parents[2] / "requirements" / "prod.lock"


def verifier_requirements() -> str:
    """cryptography and its dependencies, pinned with hashes, copied from the project's lock file."""
    blocks = []
    for block in re.split(r"\n(?=\S)", LOCK_FILE.read_text()):
        if re.match(r"(cryptography|cffi|pycparser)==", block):
            blocks.append("\n".join(line for line in block.splitlines() if not line.strip().startswith("#")))
    assert len(blocks) == 3, blocks
    return "\n".join(blocks) + "\n"


@pytest.fixture
def two_more_workers(stack_env: dict[str, str], worker: None) -> Iterator[None]:
    started = [processes.start_worker(name, stack_env, concurrency=4) for name in ("audit-a", "audit-b")]
    try:
        yield
    finally:
        for process in started:
            processes.stop(process)


@pytest.mark.usefixtures("committed_db", "two_more_workers")
def test_64_concurrent_model_calls_across_worker_processes_form_one_unbroken_chain(
    sim: SimulatorControl, wait_for: Any
) -> None:
    sim.set_scenario(reply="ok", latency_ms=40)
    tenant = do_create_tenant(slug=f"conc_{uuid.uuid4().hex[:8]}", name="Concurrency", domains=[])
    alice = make_member(tenant)
    with tenant_context(tenant):
        conversations = [do_start_conversation(alice) for _ in range(64)]
        pending = [
            do_post_user_message(conversation, f"question {n}")[1]
            for n, conversation in enumerate(conversations)
        ]

    def all_answered() -> bool:
        with tenant_context(tenant):
            return (
                Message.objects.filter(id__in=[m.id for m in pending], status=Message.Status.DONE).count()
                == 64
            )

    wait_for(all_answered, timeout=120, message="64 answers")
    with tenant_context(tenant):
        seqs = list(ModelCall.objects.order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, 65))
        assert list(find_chain_breaks(ModelCall)) == []
    served_by = [
        name
        for name in ("audit-a", "audit-b", "worker")
        if "generate_assistant_reply" in processes.log_tail(name, 2000)
    ]
    assert len(served_by) >= 2, f"only {served_by} ran the calls"


@pytest.mark.usefixtures("committed_db")
def test_64_concurrent_completions_seal_into_one_unbroken_chain(sim: SimulatorControl) -> None:
    """complete() from 32 threads at once (each its own database session): claims, provider calls and
    finishes interleave; the seals queue on the chain lock and form one gapless chain in time order.
    (Across worker processes: tests/audit/test_audit_processes.py, through the chat's path.)"""
    sim.set_scenario(reply="ok", latency_ms=40)
    tenant = do_create_tenant(slug=f"seal_{uuid.uuid4().hex[:8]}", name="Concurrent seals", domains=[])

    def one_call(index: int) -> str:
        close_old_connections()
        try:
            with tenant_context(tenant):
                return complete(
                    tenant_schema=tenant.schema_name,
                    request_id=uuid.uuid4(),
                    user_id=None,
                    model="sim-model",
                    messages=[{"role": "user", "content": f"question {index}"}],
                ).text
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(one_call, range(64)))
    assert answers == ["ok"] * 64
    with tenant_context(tenant):
        calls = list(ModelCall.objects.order_by("seq"))
        assert [call.seq for call in calls] == list(range(1, 65))
        assert {call.status for call in calls} == {ModelCall.Status.OK}
        stamps = [call.finished_at for call in calls]
        assert stamps == sorted(stamps)  # type: ignore[type-var]
        assert list(find_chain_breaks(ModelCall)) == []


@pytest.mark.usefixtures("committed_db", "worker")
def test_beat_task_signs_every_tenants_chain_heads_in_that_tenant(
    acme: Tenant, globex: Tenant, sim: SimulatorControl, wait_for: Any
) -> None:
    with tenant_context(acme):
        make_calls(acme, 1)
        head = read_head(ModelCall)
    with tenant_context(globex):
        do_record_audit_event(kind="test.beat", actor_label="tester")
        event_head = read_head(AuditEvent)
    assert checkpoint_every_tenant.delay().id

    def signed(tenant: Tenant, chain: str, seq: int) -> bool:
        with tenant_context(tenant):
            return ChainCheckpoint.objects.filter(chain=chain, seq__gte=seq).exists()

    wait_for(lambda: signed(acme, "model_calls", head.seq), message="acme's checkpoint")
    wait_for(lambda: signed(globex, "audit_events", event_head.seq), message="globex's checkpoint")
    verifier = load_verifier()
    with tenant_context(acme):
        checkpoint = ChainCheckpoint.objects.filter(chain="model_calls").order_by("-seq").first()
    assert checkpoint is not None
    key = verifier.load_public_key(platform_key().public_key_pem.encode())
    assert verifier.verify_signature(key, checkpoint.statement.encode(), checkpoint.signature)


@pytest.mark.usefixtures("committed_db", "worker")
def test_tenant_admin_exports_from_the_console_and_the_file_verifies_in_a_clean_virtualenv(
    acme: Tenant, sim: SimulatorControl, wait_for: Any, tmp_path: Path
) -> None:
    sim.set_scenario(reply="Quarterly numbers are fine.")
    admin = make_member(acme, roles=["tenant_admin"])
    with tenant_context(acme):
        make_calls(acme, 3, admin.pk)
    client = client_for(acme, admin)
    start = (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    end = (timezone.now() + dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/console/audit/exports/", {"window_start": start, "window_end": end}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    with tenant_context(acme):
        export = AuditExport.objects.filter(requested_by=admin).get()
        assert AuditEvent.objects.filter(
            kind="audit.export_requested", details__export_id=str(export.id)
        ).exists()

    def ready() -> bool:
        with tenant_context(acme):
            export.refresh_from_db()
        assert export.status != AuditExport.Status.FAILED, export.error
        return export.status == AuditExport.Status.READY

    wait_for(ready, timeout=60, message="the export")
    row = client.get(f"/console/audit/exports/{export.id}/").content.decode()
    assert "Download" in row and "every 1s" not in row
    download = client.get(f"/console/audit/exports/{export.id}/download/")
    assert download.status_code == 200
    export_path = tmp_path / "export.zip"
    export_path.write_bytes(download.getvalue())
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(client.get("/.well-known/convosuite-audit-key").content)
    verifier_path = tmp_path / "verify_export.py"
    verifier_path.write_bytes(client.get("/console/audit/verifier/verify_export.py").getvalue())
    assert verifier_path.read_bytes() == VERIFIER_PATH.read_bytes()
    with tenant_context(acme):
        assert AuditEvent.objects.filter(
            kind="audit.export_completed", details__export_id=str(export.id)
        ).exists()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    requirements = tmp_path / "verifier-requirements.txt"
    requirements.write_text(verifier_requirements())
    subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", "--require-hashes", "-r", str(requirements)],
        check=True,
        timeout=300,
    )
    installed = subprocess.run(
        [str(venv / "bin/pip"), "freeze"], capture_output=True, text=True, check=True
    ).stdout
    assert {line.split("==")[0].lower() for line in installed.split()} <= {
        "cryptography",
        "cffi",
        "pycparser",
    }
    result = subprocess.run(
        [str(venv / "bin/python"), str(verifier_path), str(export_path), "--public-key", str(key_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout and "window complete  yes" in result.stdout


@pytest.mark.django_db
def test_audit_console_is_for_tenant_admins_only(acme: Tenant, globex: Tenant) -> None:
    end_user = make_member(acme)
    assert client_for(acme, end_user).get("/console/audit/").status_code == 403
    admin = make_member(acme, roles=["tenant_admin"])
    page = client_for(acme, admin).get("/console/audit/")
    assert page.status_code == 200
    assert "BEGIN PUBLIC KEY" in page.content.decode()
    with tenant_context(acme):
        export = AuditExport.objects.create(
            window_start=timezone.now(), window_end=timezone.now(), redaction_policy="full"
        )
    globex_admin = make_member(globex, roles=["tenant_admin"])
    assert client_for(globex, globex_admin).get(f"/console/audit/exports/{export.id}/").status_code == 404
    assert (
        client_for(globex, globex_admin).get(f"/console/audit/exports/{export.id}/download/").status_code
        == 404
    )


@pytest.mark.django_db
def test_export_request_with_a_backwards_window_is_refused_with_a_clear_message(acme: Tenant) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    response = client_for(acme, admin).post(
        "/console/audit/exports/",
        {"window_start": "2026-02-01T00:00", "window_end": "2026-01-01T00:00"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "The window must end after it starts." in response.content.decode()


@pytest.mark.django_db
def test_redaction_policy_change_is_an_audit_event(acme: Tenant) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    client = client_for(acme, admin)
    assert client.post("/console/audit/redaction/", {"redaction_policy": "hashed"}).status_code == 302
    assert client.post("/console/audit/redaction/", {"redaction_policy": "bogus"}).status_code == 400
    with tenant_context(acme):
        event = AuditEvent.objects.filter(kind="audit.redaction_policy_changed").latest("seq")
        assert event.details["to"] == "hashed" and event.actor_id == admin.pk


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["acme.localhost", "localhost"])
def test_public_key_is_published_on_every_domain(tenants: dict[str, Tenant], host: str) -> None:
    from django.test import Client

    response = Client(HTTP_HOST=host).get("/.well-known/convosuite-audit-key")
    assert response.status_code == 200
    assert response.content.decode() == platform_key().public_key_pem
    listing = Client(HTTP_HOST=host).get("/.well-known/convosuite-audit-keys.json").json()
    assert platform_key().key_id in [key["key_id"] for key in listing["keys"]]


@pytest.mark.usefixtures("committed_db")
def test_prune_audit_deletes_old_rows_leaves_a_signed_checkpoint_and_later_exports_still_verify(
    sim: SimulatorControl, tmp_path: Path
) -> None:
    tenant = do_create_tenant(slug=f"prune_{uuid.uuid4().hex[:8]}", name="Prune", domains=[])
    with tenant_context(tenant):
        make_calls(tenant, 4)
        cutoff = timezone.now()
        make_calls(tenant, 2)
    call_command(
        "prune_audit", tenant=tenant.schema_name, before=cutoff.isoformat(), chain="model_calls", yes=True
    )
    with tenant_context(tenant):
        assert list(ModelCall.objects.order_by("seq").values_list("seq", flat=True)) == [5, 6]
        retention = ChainCheckpoint.objects.get(chain="model_calls", reason="retention")
        assert retention.seq == 4
        assert AuditEvent.objects.filter(kind="audit.chain_pruned", details__deleted=4).exists()

    def export_and_verify(window_start: dt.datetime, name: str) -> subprocess.CompletedProcess[str]:
        out = tmp_path / name
        call_command(
            "export_model_calls",
            tenant=tenant.schema_name,
            window_start=window_start.isoformat(),
            window_end=(timezone.now() + dt.timedelta(minutes=1)).isoformat(),
            out=str(out),
        )
        return subprocess.run(
            [sys.executable, str(VERIFIER_PATH), str(out), "--json"], capture_output=True, text=True
        )

    after_cutoff = export_and_verify(cutoff, "after-cutoff.zip")
    assert after_cutoff.returncode == 0, after_cutoff.stdout
    assert '"window_complete": true' in after_cutoff.stdout
    reaching_into_pruned = export_and_verify(cutoff - dt.timedelta(days=1), "into-pruned.zip")
    assert reaching_into_pruned.returncode == 1
    assert "deleted by the retention policy" in reaching_into_pruned.stdout
    with tenant_context(tenant):
        assert AuditEvent.objects.filter(kind="audit.export_completed", details__count=2).count() == 2


@pytest.mark.django_db
def test_expired_exports_are_deleted_and_no_longer_downloadable(acme: Tenant) -> None:
    from audit.actions import do_expire_exports, export_file_path

    admin = make_member(acme, roles=["tenant_admin"])
    with tenant_context(acme):
        export = AuditExport.objects.create(
            window_start=timezone.now(),
            window_end=timezone.now(),
            redaction_policy="full",
            status=AuditExport.Status.READY,
            file_name=f"acme-model-calls-{uuid.uuid4()}.zip",
            expires_at=timezone.now() + dt.timedelta(hours=1),
        )
        path = Path(export_file_path(export))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"zip")
    client = client_for(acme, admin)
    assert client.get(f"/console/audit/exports/{export.id}/download/").status_code == 200
    with tenant_context(acme):
        assert do_expire_exports(now=timezone.now()) == 0
        assert do_expire_exports(now=timezone.now() + dt.timedelta(hours=2)) == 1
        export.refresh_from_db()
        assert export.status == AuditExport.Status.EXPIRED
    assert not path.exists()
    assert client.get(f"/console/audit/exports/{export.id}/download/").status_code == 404


@pytest.mark.django_db
def test_a_redelivered_export_task_does_not_start_a_second_writer(acme: Tenant) -> None:
    from gateway.tasks import build_model_call_export

    with tenant_context(acme):
        running = AuditExport.objects.create(
            window_start=timezone.now() - dt.timedelta(days=1),
            window_end=timezone.now(),
            redaction_policy="full",
            status=AuditExport.Status.RUNNING,
            started_at=timezone.now(),
        )
        build_model_call_export("acme", str(running.id))
        running.refresh_from_db()
        assert running.status == AuditExport.Status.RUNNING and running.file_name == ""

        pending = AuditExport.objects.create(
            window_start=timezone.now() - dt.timedelta(days=1),
            window_end=timezone.now(),
            redaction_policy="full",
        )
        build_model_call_export("acme", str(pending.id))
        build_model_call_export("acme", str(pending.id))  # the redelivery finds it done
        pending.refresh_from_db()
        assert pending.status == AuditExport.Status.READY
        assert (
            AuditEvent.objects.filter(
                kind="audit.export_completed", details__export_id=str(pending.id)
            ).count()
            == 1
        )


def test_every_audit_console_route_is_for_tenant_admins_only() -> None:
    from django.urls import get_resolver

    from tests.test_access_rules import walk

    rules = {
        name: pattern.callback.tenant_access  # type: ignore[attr-defined]
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("audit:")
    }
    assert len(rules) == 6
    assert all(rule == {"tenant_admin"} for rule in rules.values())
