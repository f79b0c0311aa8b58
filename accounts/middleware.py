"""Refuses a session on any tenant but the one it was created on.

Sessions live in the public schema and user ids are per tenant schema: without this check an acme session
replayed on globex's domain would be resolved against globex's user table, i.e. as some other person.
"""

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.loader import render_to_string

from accounts.security import identity_origin, identity_ref, notify_security_event

SESSION_TENANT_KEY = "tenant_schema"


class TenantSessionGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant_schema = request.tenant.schema_name  # type: ignore[attr-defined]
        session_tenant = request.session.get(SESSION_TENANT_KEY)
        if session_tenant is not None and session_tenant != tenant_schema:
            # Another tenant's (or the platform's) session: its tenant and user are for the platform's log only.
            user_id = str(request.session.get(SESSION_KEY, ""))
            notify_security_event(
                request,
                "security.cross_tenant_session",
                origin=identity_origin(claimed_tenant=session_tenant, here=tenant_schema),
                identity_ref=identity_ref(here=tenant_schema, source=f"session|{session_tenant}|{user_id}"),
                ops_only={"session_tenant": session_tenant, "session_user": user_id},
            )
            return HttpResponseForbidden(render_to_string("403.html", request=None))
        if session_tenant is None and SESSION_KEY in request.session:
            # An authenticated session that was never bound to a tenant is not ours to trust.
            request.session.flush()
        return self.get_response(request)
