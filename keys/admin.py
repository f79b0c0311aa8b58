from django.contrib import admin

from convosuite.read_only_admin import ReadOnlyModelAdmin
from keys.models import TenantKey


@admin.register(TenantKey)
class TenantKeyAdmin(ReadOnlyModelAdmin):
    """Read-only: keys change only through the rotation commands, and the wrapped bytes are not shown."""

    list_display = ("tenant", "key_id", "state", "master_key_id", "created_at", "updated_at")
    list_filter = ("state", "master_key_id")
    search_fields = ("tenant__schema_name",)
    fields = ("tenant", "key_id", "state", "master_key_id", "created_at", "updated_at")
    readonly_fields = fields
