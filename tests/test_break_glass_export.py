"""A platform admin under an open break-glass grant starts a signed model-call export of the tenant, watches
its progress and downloads it, only while the grant is open; the request is the tenant's audit event and the
download a recorded read. Real worker, committed data (the worker must see it)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role
from audit.models import AuditEvent, AuditExport
from devtools.llm_simulator.testing import SimulatorControl
from evidence.signing import platform_key
from lifecycle.break_glass import do_open_break_glass_grant
from tenants.models import Tenant
from tests.audit.helpers import load_verifier, make_calls, read_export
from tests.conftest import client_for, make_member

REASON = "INC-2078: customer disputes what the assistant answered last week"


def reads_in(tenant: Tenant) -> list[AuditEvent]:
    with tenant_context(tenant):
        return list(AuditEvent.objects.filter(kind="break_glass.read").order_by("id"))


@pytest.mark.usefixtures("committed_db", "worker")
def test_export_under_break_glass_is_audited_signed_and_downloadable_only_while_the_grant_is_open(
    acme: Tenant, tenants: dict[str, Tenant], sim: SimulatorControl, wait_for: Any, tmp_path: Path
) -> None:
    public = tenants["public"]
    staff = make_member(
        public, roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email="ops3@convosuite.example"
    )
    platform = client_for(public, staff)
    sim.set_scenario(reply="Break-glass export answer.")
    with tenant_context(acme):
        request_ids = make_calls(acme, 3, make_member(acme).pk)
    grant = do_open_break_glass_grant(staff, acme, reason=REASON, minutes=10)
    base = f"/platform/break-glass/{grant.pk}/exports/"
    assert platform.get(base).status_code == 200
    start = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    end = (timezone.now() + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")
    bad = platform.post(f"{base}start/", {"window_start": end, "window_end": start})
    assert bad.status_code == 400 and "must end after it starts" in bad.content.decode()
    response = platform.post(f"{base}start/", {"window_start": start, "window_end": end})
    assert response.status_code == 302 and response["Location"] == base
    with tenant_context(acme):
        export = AuditExport.objects.filter(requested_by_label__contains="ops3@convosuite.example").get()
        assert export.requested_by is None
        requested = AuditEvent.objects.get(kind="audit.export_requested", details__export_id=str(export.id))
        assert "ops3@convosuite.example" in requested.actor_label and "break-glass" in requested.actor_label

    def ready() -> bool:
        with tenant_context(acme):
            export.refresh_from_db()
        assert export.status != AuditExport.Status.FAILED, export.error
        return export.status == AuditExport.Status.READY

    wait_for(ready, timeout=60, message="the break-glass export")
    row = platform.get(f"{base}{export.id}/").content.decode()
    assert "Download" in row and "every 1s" not in row
    download = platform.get(f"{base}{export.id}/download/")
    assert download.status_code == 200
    export_path = tmp_path / "export.zip"
    export_path.write_bytes(download.getvalue())
    lines, _manifest, _signature = read_export(export_path)
    assert {str(request_id) for request_id in request_ids} <= {line["fields"]["request_id"] for line in lines}
    key_path = tmp_path / "key.pem"
    key_path.write_text(platform_key().public_key_pem)
    report, _stats, complete = load_verifier().verify(str(export_path), key_path.read_bytes())
    assert report.problems == [] and complete
    downloaded = reads_in(acme)[-1]
    assert downloaded.details["what"] == "exports.download" and downloaded.details["export"] == str(export.id)

    colleague = make_member(public, roles=[Role.PLATFORM_ADMIN.value], is_staff=True)
    assert client_for(public, colleague).get(f"{base}{export.id}/download/").status_code == 404
    assert platform.post(f"/platform/break-glass/{grant.pk}/close/").status_code == 302
    assert platform.get(f"{base}{export.id}/download/").status_code == 403
    assert platform.get(base).status_code == 403
    assert platform.post(f"{base}start/", {"window_start": start, "window_end": end}).status_code == 403
