"""Platform staff pages on the platform domain: usage across tenants (numbers) and break-glass.

Tenant content is readable only inside `under_grant`, which checks the staff member's own open grant
(expired or closed: 403), switches to the tenant's schema and records the read in the tenant's audit trail
before anything is rendered.
"""

import datetime as dt
import os
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tenants.utils import tenant_context

from accounts.access import platform_view
from accounts.models import User
from accounts.requests import TenantRequest
from audit.actions import ExportRejected, access_export_by_id, do_request_model_call_export, export_file_path
from audit.models import AuditExport
from console.inputs import parse_utc_input
from console.model_calls import model_call_content
from lifecycle.break_glass import (
    BreakGlassRejected,
    access_active_grant_by_id,
    do_close_break_glass_grant,
    do_open_break_glass_grant,
    do_record_break_glass_read,
    staff_label,
)
from platform_console.reads import (
    access_conversation_under_grant,
    access_knowledge_base_under_grant,
    access_model_call_under_grant,
    access_prompt_template_under_grant,
    conversations_under_grant,
    documents_under_grant,
    knowledge_bases_under_grant,
    model_calls_under_grant,
    prompt_templates_under_grant,
    prompt_versions_under_grant,
)
from platform_console.usage import usage_across_tenants
from tenants.models import BreakGlassGrant, Tenant

PAGE_SIZE = 50


@require_GET
@platform_view
def usage(request: TenantRequest) -> HttpResponse:
    rows = usage_across_tenants()
    totals = {
        "month_tokens": sum(row.month.tokens for row in rows),
        "month_cost": sum((row.month.cost for row in rows), Decimal(0)),
        "month_calls": sum(row.month.calls for row in rows),
    }
    return render(request, "platform/usage.html", {"rows": rows, "totals": totals})


def _grant_rows(staff: User) -> list[dict[str, Any]]:
    now = timezone.now()
    grants = BreakGlassGrant.objects.select_related("tenant", "staff").order_by("-opened_at")[:50]
    return [
        {
            "grant": grant,
            "state": "active" if grant.is_active_at(now) else ("closed" if grant.closed_at else "expired"),
            "mine": grant.staff_id == staff.pk,
        }
        for grant in grants
    ]


@require_http_methods(["GET", "POST"])
@platform_view
def break_glass(request: TenantRequest) -> HttpResponse:
    staff = request.user
    tenants = Tenant.objects.exclude(schema_name="public").order_by("name")
    form = {"tenant": "", "reason": "", "minutes": "30"}
    error = ""
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in form}
        tenant = tenants.filter(schema_name=form["tenant"]).first()
        try:
            minutes = int(form["minutes"] or 0)
        except ValueError:
            minutes = 0
        try:
            grant = do_open_break_glass_grant(staff, tenant, reason=form["reason"], minutes=minutes)
        except BreakGlassRejected as rejection:
            error = str(rejection)
        else:
            flash.warning(
                request,
                f"Break-glass open on {grant.tenant.name} until {grant.expires_at:%H:%M} UTC. "
                "Every page you read is recorded in the tenant's audit trail.",
            )
            return redirect("platform:grant_conversations", grant_id=grant.pk)
    context = {
        "tenants": tenants,
        "form": form,
        "error": error,
        "grants": _grant_rows(staff),
        "max_minutes": BreakGlassGrant.MAX_MINUTES,
        "min_reason": BreakGlassGrant.MIN_REASON_LENGTH,
    }
    return render(request, "platform/break_glass.html", context, status=400 if error else 200)


@require_POST
@platform_view
def close_grant(request: TenantRequest, grant_id: int) -> HttpResponse:
    staff = request.user
    grant = access_active_grant_by_id(staff, grant_id)
    do_close_break_glass_grant(grant, staff=staff)
    flash.success(request, f"Break-glass on {grant.tenant.name} closed.")
    return redirect("platform:break_glass")


def under_grant(
    request: TenantRequest,
    grant_id: int,
    what: str,
    build: Callable[[], dict[str, Any]],
    template: str,
    **details: Any,
) -> HttpResponse:
    """Check the grant, switch to its tenant, record the read, then build and render the page there."""
    staff = request.user
    grant = access_active_grant_by_id(staff, grant_id)
    with tenant_context(grant.tenant):
        # Committed on its own (autocommit) before the page is built: a read that then fails is recorded too.
        do_record_break_glass_read(grant, path=request.get_full_path(), what=what, **details)
        context = {"grant": grant, "tab": what.split(".")[0], **build()}
        return render(request, template, context)


def _page(request: TenantRequest, items: Any) -> Any:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


@require_GET
@platform_view
def grant_conversations(request: TenantRequest, grant_id: int) -> HttpResponse:
    return under_grant(
        request, grant_id, "conversations.list",
        lambda: {"page": _page(request, conversations_under_grant())},
        "platform/grant_conversations.html",
    )  # fmt: skip


@require_GET
@platform_view
def grant_conversation(request: TenantRequest, grant_id: int, conversation_id: uuid.UUID) -> HttpResponse:
    def build() -> dict[str, Any]:
        conversation = access_conversation_under_grant(conversation_id)
        return {"conversation": conversation, "messages": list(conversation.messages.order_by("created_at"))}

    return under_grant(
        request, grant_id, "conversations.detail", build, "platform/grant_conversation.html",
        conversation=str(conversation_id),
    )  # fmt: skip


@require_GET
@platform_view
def grant_model_calls(request: TenantRequest, grant_id: int) -> HttpResponse:
    return under_grant(
        request, grant_id, "model_calls.list",
        lambda: {"page": _page(request, model_calls_under_grant())},
        "platform/grant_model_calls.html",
    )  # fmt: skip


@require_GET
@platform_view
def grant_model_call(request: TenantRequest, grant_id: int, call_id: uuid.UUID) -> HttpResponse:
    def build() -> dict[str, Any]:
        call = access_model_call_under_grant(call_id)
        return {"call": call, "content": model_call_content(call)}

    return under_grant(
        request,
        grant_id,
        "model_calls.detail",
        build,
        "platform/grant_model_call.html",
        model_call=str(call_id),
    )


@require_GET
@platform_view
def grant_prompts(request: TenantRequest, grant_id: int) -> HttpResponse:
    return under_grant(
        request, grant_id, "prompts.list",
        lambda: {"page": _page(request, prompt_templates_under_grant())},
        "platform/grant_prompts.html",
    )  # fmt: skip


@require_GET
@platform_view
def grant_prompt(request: TenantRequest, grant_id: int, template_id: uuid.UUID) -> HttpResponse:
    def build() -> dict[str, Any]:
        template = access_prompt_template_under_grant(template_id)
        return {"template": template, "versions": prompt_versions_under_grant(template)}

    return under_grant(
        request, grant_id, "prompts.detail", build, "platform/grant_prompt.html",
        prompt_template=str(template_id),
    )  # fmt: skip


@require_GET
@platform_view
def grant_knowledge_bases(request: TenantRequest, grant_id: int) -> HttpResponse:
    return under_grant(
        request, grant_id, "knowledge.list",
        lambda: {"page": _page(request, knowledge_bases_under_grant())},
        "platform/grant_knowledge_bases.html",
    )  # fmt: skip


@require_GET
@platform_view
def grant_knowledge_base(request: TenantRequest, grant_id: int, knowledge_base_id: uuid.UUID) -> HttpResponse:
    def build() -> dict[str, Any]:
        knowledge_base = access_knowledge_base_under_grant(knowledge_base_id)
        return {
            "knowledge_base": knowledge_base,
            "page": _page(request, documents_under_grant(knowledge_base)),
        }

    return under_grant(
        request, grant_id, "knowledge.detail", build, "platform/grant_knowledge_base.html",
        knowledge_base=str(knowledge_base_id),
    )  # fmt: skip


def _export_page_context(grant: BreakGlassGrant, **extra: Any) -> dict[str, Any]:
    now = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return {
        "exports": AuditExport.objects.order_by("-created_at")[:10],
        "default_start": (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "default_end": now.strftime("%Y-%m-%dT%H:%M"),
        "export_error": "",
        **extra,
    }


@require_GET
@platform_view
def grant_exports(request: TenantRequest, grant_id: int) -> HttpResponse:
    staff = request.user
    grant = access_active_grant_by_id(staff, grant_id)
    return under_grant(
        request, grant_id, "exports.list", lambda: _export_page_context(grant), "platform/grant_exports.html"
    )


@require_POST
@platform_view
def grant_start_export(request: TenantRequest, grant_id: int) -> HttpResponse:
    """The export request is itself the tenant's audit event (audit.export_requested, by the staff member)."""
    staff = request.user
    grant = access_active_grant_by_id(staff, grant_id)
    window_start = parse_utc_input(request.POST.get("window_start", ""))
    window_end = parse_utc_input(request.POST.get("window_end", ""))
    with tenant_context(grant.tenant):
        error = ""
        if window_start is None or window_end is None:
            error = "Give the window's start and end as dates and times (UTC)."
        else:
            try:
                do_request_model_call_export(
                    window_start=window_start,
                    window_end=window_end,
                    acting_user=None,
                    acting_label=staff_label(staff),
                )
            except ExportRejected as rejection:
                error = str(rejection)
        if error:
            context = {"grant": grant, "tab": "exports", **_export_page_context(grant, export_error=error)}
            return render(request, "platform/grant_exports.html", context, status=400)
    return redirect("platform:grant_exports", grant_id=grant.pk)


@require_GET
@platform_view
def grant_export_row(request: TenantRequest, grant_id: int, export_id: uuid.UUID) -> HttpResponse:
    """Progress polling: the export's status and counts only, no tenant content, so not a read to record
    (the page that shows it and the download are)."""
    staff = request.user
    grant = access_active_grant_by_id(staff, grant_id)
    with tenant_context(grant.tenant):
        export = access_export_by_id(export_id)
        return render(request, "platform/_grant_export_row.html", {"grant": grant, "export": export})


@require_GET
@platform_view
def grant_download_export(request: TenantRequest, grant_id: int, export_id: uuid.UUID) -> FileResponse:
    staff = request.user
    grant = access_active_grant_by_id(staff, grant_id)
    with tenant_context(grant.tenant):
        export = access_export_by_id(export_id)
        path = export_file_path(export)
        if export.status != AuditExport.Status.READY or not os.path.exists(path):
            raise Http404("This export is not available.")
        do_record_break_glass_read(
            grant, path=request.get_full_path(), what="exports.download", export=str(export_id)
        )
        return FileResponse(open(path, "rb"), as_attachment=True, filename=export.file_name)  # noqa: SIM115
