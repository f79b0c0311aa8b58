"""The one gate every tenant page goes through.

`tenant_view(...)` resolves who may see a view from the verified session (whose tenant already matched
the domain in TenantSessionGuardMiddleware) and the roles mirrored from the token. A test walks the URL
conf and fails on any tenant route that is not wrapped by it (or explicitly listed as public).
"""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from accounts.models import Role

# HttpResponseBase: streaming responses (server-sent events) and file downloads go through the same gate.
ViewFunc = Callable[..., HttpResponseBase]

MEMBER_ROLES = (Role.END_USER, Role.TENANT_ADMIN)


def tenant_view(
    *, roles: Iterable[str] = MEMBER_ROLES, hide_from_other_roles: bool = False
) -> Callable[[ViewFunc], ViewFunc]:
    """hide_from_other_roles: members without the role get 404 instead of 403, for pages whose very
    existence (e.g. a prompt template's id) is not theirs to learn."""
    allowed = frozenset(roles)

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            tenant = getattr(request, "tenant", None)
            if tenant is None or tenant.is_platform:
                raise Http404
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not allowed & set(request.user.roles):
                if hide_from_other_roles:
                    raise Http404
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.tenant_access = allowed  # type: ignore[attr-defined]
        wrapped.hidden_from_other_roles = hide_from_other_roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


def platform_view(view: ViewFunc) -> ViewFunc:
    """Pages on the platform domain for platform staff (role platform_admin from the identity provider).

    They never show tenant content by themselves: break-glass pages additionally require an open grant
    (lifecycle.break_glass.access_active_grant_by_id)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        tenant = getattr(request, "tenant", None)
        if tenant is None or not tenant.is_platform:
            raise Http404
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if Role.PLATFORM_ADMIN not in request.user.roles or not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    wrapped.tenant_access = frozenset({Role.PLATFORM_ADMIN.value})  # type: ignore[attr-defined]
    wrapped.platform_page = True  # type: ignore[attr-defined]
    return wrapped


def public_view(view: ViewFunc) -> ViewFunc:
    """Marks a view that needs no sign-in (landing, sign-in failure, signed-out pages)."""
    view.tenant_access = "public"  # type: ignore[attr-defined]
    return view
