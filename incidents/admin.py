"""Incidents in the platform's Django admin: listed and opened; they change through the platform incident pages
(/platform/incidents/) and commands, which call incidents.actions."""

from django.contrib import admin

from convosuite.read_only_admin import ReadOnlyModelAdmin
from incidents.models import Incident, IncidentEvent, IncidentNotification, IncidentTenant


class IncidentTenantInline(admin.TabularInline):  # type: ignore[type-arg]
    model = IncidentTenant
    extra = 0
    can_delete = False
    readonly_fields = ("schema_name", "role", "tenant")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class IncidentEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = IncidentEvent
    extra = 0
    can_delete = False
    readonly_fields = ("at", "kind", "actor_label", "message")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyModelAdmin):
    list_display = ("reference", "kind", "severity", "status", "title", "opened_at")
    list_filter = ("kind", "severity", "status")
    search_fields = ("title", "dedupe_key")
    inlines = [IncidentTenantInline, IncidentEventInline]
    view_on_site = False

    @admin.display(description="Incident")
    def reference(self, obj: Incident) -> str:
        return obj.reference


@admin.register(IncidentNotification)
class IncidentNotificationAdmin(ReadOnlyModelAdmin):
    list_display = ("created_at", "incident", "channel", "audience", "schema_name", "recipient", "sent")
    list_filter = ("channel", "audience", "sent")
