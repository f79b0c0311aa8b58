"""Usage across tenants for platform staff: numbers only, never content. One aggregate query per tenant,
run inside that tenant's schema."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from console.usage import UsageTotals, periods_for, usage_totals
from tenants.models import Tenant


@dataclass(frozen=True)
class TenantUsage:
    tenant: Tenant
    today: UsageTotals
    month: UsageTotals


def usage_across_tenants(now: datetime | None = None) -> list[TenantUsage]:
    now = now or timezone.now()
    rows = []
    for tenant in Tenant.objects.exclude(schema_name="public").order_by("schema_name"):
        periods = periods_for(now, tenant.time_zone)
        end = now + timedelta(microseconds=1)
        with tenant_context(tenant):
            rows.append(
                TenantUsage(
                    tenant=tenant,
                    today=usage_totals(periods.today_start, end),
                    month=usage_totals(periods.month_start, end),
                )
            )
    return rows
