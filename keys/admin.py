from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from keys.models import TenantKey


@admin.register(TenantKey)
class TenantKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: keys change only through the rotation commands, and the wrapped bytes are not shown."""

    list_display = ("tenant", "key_id", "state", "master_key_id", "created_at", "updated_at")
    list_filter = ("state", "master_key_id")
    search_fields = ("tenant__schema_name",)
    fields = ("tenant", "key_id", "state", "master_key_id", "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
