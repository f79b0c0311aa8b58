"""A frozen tenant is read-only: every state-changing request on its domain gets a clear 423 page."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from tenants.models import Tenant
from tenants.status import TENANT_FROZEN_MESSAGE

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signing out must keep working during an incident.
ALWAYS_ALLOWED_PATHS = frozenset({"/logout/"})


class FrozenTenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if (
            tenant is not None
            and tenant.status == Tenant.Status.FROZEN
            and request.method not in SAFE_METHODS
            and request.path not in ALWAYS_ALLOWED_PATHS
        ):
            if request.headers.get("HX-Request"):
                # htmx callers (the chat composer) show a short plain-text error in place.
                return HttpResponse(
                    TENANT_FROZEN_MESSAGE, status=423, content_type="text/plain; charset=utf-8"
                )
            body = render_to_string("tenant_frozen.html", {"tenant_name": tenant.name})
            return HttpResponse(body, status=423)
        return self.get_response(request)
