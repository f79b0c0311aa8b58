"""`{% incident_banners %}`: the banners of the incident tooling, for the base template (placed once, after the
flash messages): a model the tenant uses is degraded (chat and console, everyone), and notices from the
platform that no admin has acknowledged yet (tenant admins)."""

from typing import Any

from django import template

from accounts.models import Role
from gateway.actions import access_gateway_policy
from incidents.notices import open_notices
from incidents.status import degraded_models, status_page_url

register = template.Library()


@register.inclusion_tag("incidents/_banners.html", takes_context=True)
def incident_banners(context: Any) -> dict[str, Any]:
    request = context.get("request")
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    if tenant is None or tenant.is_platform or user is None or not user.is_authenticated:
        return {"degraded": [], "notices": []}
    degraded = degraded_models(list(access_gateway_policy().allowed_models))
    notices = open_notices() if Role.TENANT_ADMIN.value in (user.roles or []) else []
    status_url = status_page_url(request) if degraded else ""
    return {"degraded": degraded, "notices": notices, "request": request, "status_page_url": status_url}
