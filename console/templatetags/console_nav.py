"""The console's left navigation for every console page, whichever app renders it."""

from typing import Any

from django import template

from console.nav import nav_sections
from gateway.alerts import budget_status
from gateway.models import GatewayPolicy

register = template.Library()

# URL namespaces whose pages belong to a nav entry of another name.
NAMESPACE_NAV_KEYS = {"audit": "evidence"}


@register.inclusion_tag("console/_nav.html", takes_context=True)
def console_nav(context: Any) -> dict[str, Any]:
    # Console views pass `active`; apps that extend the console layout pass `console_section` or are
    # recognised by their URL namespace (prompts, knowledge).
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    namespace = getattr(match, "namespace", "") or ""
    active = (
        context.get("active")
        or context.get("console_section")
        or NAMESPACE_NAV_KEYS.get(namespace, namespace)
    )
    tenant = getattr(request, "tenant", None)
    kill_switch_on = False
    if tenant is not None and not tenant.is_platform:
        kill_switch_on = GatewayPolicy.objects.filter(singleton=True, kill_switch=True).exists()
    return {"nav": nav_sections(active), "kill_switch_on": kill_switch_on}


@register.inclusion_tag("console/_banners.html", takes_context=True)
def console_banners(context: Any) -> dict[str, Any]:
    """On every console page: a red banner while the kill switch is on, and one for each budget past the
    tenant's alert threshold (read-only; the e-mail is sent by gateway.tasks)."""
    request = context.get("request")
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.is_platform:
        return {"status": None}
    return {"status": budget_status(tenant.schema_name), "request": request}
