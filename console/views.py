"""Tenant admin console: thin views over console.usage, console.model_calls and the tenant's own tables.

Every view is tenant_view(roles=["tenant_admin"]): end-users get 403, other tenants' sessions are refused by
the session guard before reaching here, and everything is read from the tenant's own schema.
"""

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import tenant_view
from accounts.models import Role, User
from accounts.requests import TenantRequest
from audit.models import AuditEvent
from console.audit_events import (
    AuditFilterForm,
    actor_choices,
    filtered_events,
    kind_choices,
    with_readable_details,
)
from console.model_calls import (
    ModelCallFilterForm,
    access_model_call_by_id,
    filter_choices,
    filtered_model_calls,
    model_call_content,
    selected_caller,
    with_callers,
)
from console.nav import nav_sections
from console.usage import PRESETS, RangeError, parse_range, usage_report
from gateway.alerts import budget_status

ADMINS = [Role.TENANT_ADMIN.value]
PAGE_SIZE = 50


def _render(
    request: TenantRequest, template: str, active: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(
        request, template, {"nav": nav_sections(active), "active": active, **context}, status=status
    )


def _page(request: TenantRequest, items: Any) -> Any:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: TenantRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_GET
@tenant_view(roles=ADMINS)
def home(request: TenantRequest) -> HttpResponse:
    return redirect("console:usage")


def _usage_context(request: TenantRequest) -> tuple[dict[str, Any], int]:
    """The report for the range in the query (default: today), and 400 with the reason for a bad range."""
    now = timezone.now()
    time_zone = request.tenant.time_zone
    today = now.astimezone(ZoneInfo(time_zone)).date()
    error = ""
    try:
        chosen = parse_range(request.GET, today)
    except RangeError as problem:
        chosen, error = parse_range({}, today), str(problem)
    context = {
        "report": usage_report(now, time_zone, chosen),
        "budget": budget_status(request.tenant.schema_name),
        "presets": PRESETS,
        "range_error": error,
        "range_query": request.GET.urlencode() if not error else "",
        "max_day": today.isoformat(),
    }
    return context, 400 if error else 200


@require_GET
@tenant_view(roles=ADMINS)
def usage(request: TenantRequest) -> HttpResponse:
    context, status = _usage_context(request)
    return _render(request, "console/usage.html", "usage", context, status=status)


@require_GET
@tenant_view(roles=ADMINS)
def usage_live(request: TenantRequest) -> HttpResponse:
    """Polled every few seconds by the usage page: the figures, tables and chart data, as one fragment."""
    context, status = _usage_context(request)
    return render(request, "console/_usage_live.html", context, status=status)


@require_GET
@tenant_view(roles=ADMINS)
def model_calls(request: TenantRequest) -> HttpResponse:
    form = ModelCallFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        invalid = {
            "form": form,
            "page": None,
            "choices": filter_choices(),
            "query": "",
            "selected_caller": selected_caller(form),
        }
        return _render(request, "console/model_calls.html", "model-calls", invalid, status=400)
    filters = form.cleaned_data if request.GET else {}
    calls = filtered_model_calls(filters, time_zone=request.tenant.time_zone)
    page = _page(request, calls)
    page.object_list = with_callers(page.object_list)
    context: dict[str, Any] = {
        "form": form,
        "page": page,
        "choices": filter_choices(),
        "selected_caller": selected_caller(form),
        "query": _query_without_page(request),
        "filtered": any(filters.values()) if filters else False,
    }
    return _render(request, "console/model_calls.html", "model-calls", context)


@require_GET
@tenant_view(roles=ADMINS)
def model_call_detail(request: TenantRequest, call_id: uuid.UUID) -> HttpResponse:
    (call,) = with_callers([access_model_call_by_id(call_id)])
    context = {"call": call, "content": model_call_content(call), "back": request.GET.get("back", "")}
    return _render(request, "console/model_call_detail.html", "model-calls", context)


@require_GET
@tenant_view(roles=ADMINS)
def members(request: TenantRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    role = request.GET.get("role", "")
    people = User.objects.filter(is_active=True).order_by("display_name", "email")
    if query:
        people = people.filter(Q(email__icontains=query) | Q(display_name__icontains=query))
    if role in {Role.TENANT_ADMIN, Role.END_USER}:
        people = people.filter(roles__contains=[role])
    context = {
        "page": _page(request, people),
        "q": query,
        "role": role,
        "roles": [(Role.TENANT_ADMIN.value, "Admins"), (Role.END_USER.value, "Users")],
        "query": _query_without_page(request),
    }
    return _render(request, "console/members.html", "members", context)


@require_GET
@tenant_view(roles=ADMINS)
def audit_events(request: TenantRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    valid = not request.GET or form.is_valid()
    filters = form.cleaned_data if request.GET and valid else {}
    time_zone = request.tenant.time_zone
    page = _page(
        request, filtered_events(filters, time_zone=time_zone) if valid else AuditEvent.objects.none()
    )
    page.object_list = with_readable_details(page.object_list, time_zone)
    context = {
        "form": form,
        "page": page,
        "kinds": kind_choices(),
        "actors": actor_choices(),
        "query": _query_without_page(request),
        "filtered": bool(filters and any(filters.values())),
        "time_zone": time_zone,
    }
    return _render(request, "console/audit.html", "audit", context, status=200 if valid else 400)
