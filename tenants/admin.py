from django.contrib import admin

from tenants.models import Domain, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("schema_name", "name", "status", "created_at")
    search_fields = ("schema_name", "name")
    inlines = [DomainInline]
    readonly_fields = ("schema_name", "created_at")
