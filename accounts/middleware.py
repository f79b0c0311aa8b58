"""Refuses a session on any tenant but the one it was created on.

Sessions live in the public schema and user ids are per tenant schema: without this check an acme session
replayed on globex's domain would be resolved against globex's user table, i.e. as some other person.
"""

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.loader import render_to_string

from accounts.security import notify_security_event

SESSION_TENANT_KEY = "tenant_schema"


class TenantSessionGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_schema = request.tenant.schema_name  # type: ignore[attr-defined]
        session_tenant = request.session.get(SESSION_TENANT_KEY)
        if session_tenant is not None and session_tenant != tenant_schema:
            notify_security_event(request, "security.cross_tenant_session", session_tenant=session_tenant)
            return HttpResponseForbidden(render_to_string("403.html", request=None))
        if session_tenant is None and SESSION_KEY in request.session:
            # An authenticated session that was never bound to a tenant is not ours to trust.
            request.session.flush()
        return self.get_response(request)
