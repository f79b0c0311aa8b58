"""A worker process killed in the middle of a document: the task is redelivered (acks_late +
reject_on_worker_lost) and the next run resumes from the stored chunks; the document ends up ready with each
passage exactly once."""

import base64
import hashlib
import os
import signal
import subprocess
import uuid
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from knowledge.actions import do_create_knowledge_base
from knowledge.crypto_seam import encrypt_for_tenant
from knowledge.models import Chunk, Document, DocumentVersion
from knowledge.tasks import ingest_document_version
from tenants.models import Tenant
from tests.conftest import make_member
from tests.support import processes

QUEUE = "knowledge-restart-test"


@pytest.mark.usefixtures("committed_db")
def test_document_survives_its_worker_process_being_killed(
    acme: Tenant, stack_env: dict[str, str], wait_for: Any
) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    text = "\n\n".join(
        f"Clause {n}. Suppliers deliver goods to dock {n % 7} and invoices are paid within {n % 60} days." * 4
        for n in range(500)
    ).encode()
    with tenant_context(acme):
        kb = do_create_knowledge_base(f"Restart {uuid.uuid4()}", acting_user=admin)
        document = Document.objects.create(knowledge_base=kb, name="contracts.txt")
        version = DocumentVersion.objects.create(
            document=document,
            number=1,
            file_name="contracts.txt",
            size_bytes=len(text),
            sha256=hashlib.sha256(text).hexdigest(),
            upload_token=encrypt_for_tenant(base64.b64encode(text).decode()),
        )
        document.latest_version = version
        document.save(update_fields=["latest_version"])
        ingest_document_version.apply_async(("acme", str(version.id)), queue=QUEUE)

    env = {**stack_env, "KNOWLEDGE_INGEST_SLICE_SECONDS": "300"}
    worker = processes.start_worker("restart-worker", env, concurrency=1, queues=QUEUE)
    try:

        def progress() -> int:
            with tenant_context(acme):
                return DocumentVersion.objects.get(id=version.id).chunks_embedded

        wait_for(lambda: progress() >= 64, timeout=120, message="embedding to be under way")
        children = subprocess.check_output(["pgrep", "-P", str(worker.pid)]).split()
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        killed_at = progress()

        def ready() -> bool:
            with tenant_context(acme):
                return DocumentVersion.objects.get(id=version.id).state == DocumentVersion.State.READY

        wait_for(ready, timeout=240, message="the document to be ready after the kill")
    finally:
        processes.stop(worker)
    with tenant_context(acme):
        version.refresh_from_db()
        ordinals = list(Chunk.objects.filter(version=version).values_list("ordinal", flat=True))
    assert version.chunks_total > killed_at > 0
    assert sorted(ordinals) == list(range(version.chunks_total))
    assert "WorkerLostError" in processes.log_tail("restart-worker", 400)
