"""The evidence export page for tenant admins: exports (with progress), redaction policy, public key and
the verifier (the events have their own page, console.views.audit_events). Thin views: parse, call one
action, render."""

import datetime as dt
import os
import uuid

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from accounts.requests import TenantRequest
from audit.actions import (
    ExportRejected,
    access_export_by_id,
    audit_settings,
    do_request_model_call_export,
    do_set_redaction_policy,
    export_file_path,
)
from audit.models import AuditExport, RedactionPolicy
from console.inputs import parse_utc_input
from evidence.signing import platform_key

ADMIN = ["tenant_admin"]
VERIFIER_FILE = settings.BASE_DIR / "verifier" / "verify_export.py"


def _page_context(request: TenantRequest, **extra: object) -> dict[str, object]:
    # The default window ends at the next whole minute, so it includes the calls made a moment ago.
    now = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return {
        "exports": AuditExport.objects.order_by("-created_at")[:10],
        "settings": audit_settings(),
        "redaction_choices": RedactionPolicy.choices,
        "public_key": platform_key(),
        "default_start": (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "default_end": now.strftime("%Y-%m-%dT%H:%M"),
        "retention_hours": settings.AUDIT_EXPORT_RETENTION_HOURS,
        **extra,
    }


@require_GET
@tenant_view(roles=ADMIN)
def audit_home(request: TenantRequest) -> HttpResponse:
    return render(request, "audit/console.html", _page_context(request))


@require_POST
@tenant_view(roles=ADMIN)
def start_export(request: TenantRequest) -> HttpResponse:
    window_start = parse_utc_input(request.POST.get("window_start", ""))
    window_end = parse_utc_input(request.POST.get("window_end", ""))
    error = ""
    if window_start is None or window_end is None:
        error = "Give the window's start and end as dates and times (UTC)."
    else:
        try:
            do_request_model_call_export(
                window_start=window_start, window_end=window_end, acting_user=request.user
            )
        except ExportRejected as rejection:
            error = str(rejection)
    if not request.htmx:
        if error:
            return render(
                request, "audit/console.html", _page_context(request, export_error=error), status=400
            )
        return redirect("audit:home")
    context = {"exports": AuditExport.objects.order_by("-created_at")[:10], "export_error": error}
    return render(request, "audit/_exports.html", context, status=400 if error else 200)


@require_GET
@tenant_view(roles=ADMIN)
def export_row(request: TenantRequest, export_id: uuid.UUID) -> HttpResponse:
    return render(request, "audit/_export_row.html", {"export": access_export_by_id(export_id)})


@require_GET
@tenant_view(roles=ADMIN)
def download_export(request: TenantRequest, export_id: uuid.UUID) -> FileResponse:
    export = access_export_by_id(export_id)
    if export.status != AuditExport.Status.READY:
        raise Http404("This export is not available.")
    path = export_file_path(export)
    if not os.path.exists(path):
        raise Http404("This export is not available.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=export.file_name)  # noqa: SIM115


@require_POST
@tenant_view(roles=ADMIN)
def set_redaction_policy(request: TenantRequest) -> HttpResponse:
    policy = request.POST.get("redaction_policy", "")
    if policy not in RedactionPolicy.values:
        return HttpResponse("Unknown redaction policy.", status=400, content_type="text/plain; charset=utf-8")
    do_set_redaction_policy(policy, acting_user=request.user)
    return redirect("audit:home")


@require_GET
@tenant_view(roles=ADMIN)
def download_verifier(request: TenantRequest) -> FileResponse:
    return FileResponse(
        open(VERIFIER_FILE, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename="verify_export.py",
        content_type="text/x-python",
    )
