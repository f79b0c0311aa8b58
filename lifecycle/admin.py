"""Django admin on the platform domain: tenants and domains, lifecycle actions, break-glass grants and
tombstones (read-only). No tenant-content model is registered here (tests/test_platform_admin.py proves it):
tenant content is read only through break-glass pages, which audit every read."""

import time
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from convosuite.read_only_admin import ReadOnlyModelAdmin
from lifecycle.actions import (
    TenantLifecycleError,
    TenantSlugError,
    do_create_tenant,
    do_freeze_tenant,
    do_offboard_tenant,
    do_unfreeze_tenant,
)
from lifecycle.forms import OnboardTenantForm
from tenants.models import BreakGlassGrant, Domain, Tenant, TenantTombstone


def _staff_label(request: HttpRequest) -> str:
    return f"platform admin {getattr(request.user, 'email', '') or request.user} (Django admin)"


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("schema_name", "name", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("schema_name", "name")
    inlines = [DomainInline]
    readonly_fields = ("schema_name", "status", "created_at")
    actions = ["freeze", "unfreeze", "offboard"]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Onboarding: the same action as `manage.py create_tenant` (schema by migrations, data key, domains,
        default gateway policy), not Django's model form, which would only insert a row."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OnboardTenantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            started = time.perf_counter()
            try:
                tenant = do_create_tenant(
                    slug=form.cleaned_data["slug"],
                    name=form.cleaned_data["name"],
                    domains=form.cleaned_data["domains"],
                    acting_label=_staff_label(request),
                )
            except TenantSlugError as error:
                form.add_error("slug", str(error))
            else:
                self.message_user(
                    request,
                    f"{tenant.name} is ready at {', '.join(form.cleaned_data['domains'])} "
                    f"({time.perf_counter() - started:.2f} s). Tell the identity provider: tenant claim "
                    f"{tenant.schema_name!r}.",
                    messages.SUCCESS,
                )
                return redirect("admin:tenants_tenant_change", tenant.pk)
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": "Onboard a tenant", "add": True}  # fmt: skip
        return TemplateResponse(request, "admin/tenants/onboard.html", context)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a row would orphan its schema; offboarding (the action) exports and drops it properly.
        return False

    @admin.action(description="Freeze (read-only, no model calls)")
    def freeze(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset.exclude(schema_name="public"):
            try:
                do_freeze_tenant(
                    tenant, reason="Frozen from the platform admin.", acting_label=_staff_label(request)
                )
            except TenantLifecycleError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{tenant.name} is frozen.", messages.WARNING)

    @admin.action(description="Unfreeze")
    def unfreeze(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        for tenant in queryset:
            try:
                do_unfreeze_tenant(
                    tenant, reason="Unfrozen from the platform admin.", acting_label=_staff_label(request)
                )
            except TenantLifecycleError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{tenant.name} is active again.", messages.SUCCESS)

    @admin.action(description="Offboard (export, drop schema, destroy key) — irreversible")
    def offboard(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse | None:
        tenants = list(queryset.exclude(schema_name="public"))
        typed = request.POST.get("confirm_slugs", "").split()
        if request.POST.get("confirmed") and sorted(typed) == sorted(t.schema_name for t in tenants):
            for tenant in tenants:
                tombstone = do_offboard_tenant(
                    tenant, archive_dir=settings.TENANT_ARCHIVE_DIR, acting_label=_staff_label(request)
                )
                self.message_user(
                    request,
                    f"{tombstone.slug} offboarded; archive {tombstone.archive_name} (sha256 {tombstone.archive_sha256}).",
                    messages.SUCCESS,
                )
            return None
        if request.POST.get("confirmed"):
            self.message_user(request, "The slugs typed did not match; nothing was changed.", messages.ERROR)
        context = {**self.admin_site.each_context(request), "tenants": tenants, "opts": self.model._meta,
                   "action_checkbox_name": ACTION_CHECKBOX_NAME}  # fmt: skip
        return TemplateResponse(request, "admin/tenants/offboard_confirm.html", context)


@admin.register(BreakGlassGrant)
class BreakGlassGrantAdmin(ReadOnlyModelAdmin):
    """The platform's own record of who opened what, when and why (read-only; opened via /platform/break-glass/)."""

    list_display = ("opened_at", "tenant", "staff", "short_reason", "expires_at", "closed_at")
    list_filter = ("tenant",)
    readonly_fields = ("staff", "tenant", "reason", "opened_at", "expires_at", "closed_at")

    @admin.display(description="Reason")
    def short_reason(self, grant: BreakGlassGrant) -> str:
        return grant.reason[:80]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        link = format_html('<a href="{}">Open a grant</a>', reverse("platform:break_glass"))
        self.message_user(
            request, format_html("Grants are opened on the break-glass page: {}", link), messages.INFO
        )
        return super().changelist_view(request, extra_context)


@admin.register(TenantTombstone)
class TenantTombstoneAdmin(ReadOnlyModelAdmin):
    list_display = ("slug", "name", "offboarded_at", "archive_name", "archive_sha256")
    readonly_fields = ("slug", "name", "offboarded_at", "archive_name", "archive_sha256")
