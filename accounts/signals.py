from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.middleware import SESSION_TENANT_KEY


@receiver(user_logged_in)
def bind_session_to_tenant(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A session is valid only on the tenant it was created on (see TenantSessionGuardMiddleware)."""
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        request.session[SESSION_TENANT_KEY] = tenant.schema_name
