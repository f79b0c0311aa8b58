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

ViewFunc = Callable[..., HttpResponseBase]  # file downloads stream (FileResponse)

MEMBER_ROLES = (Role.END_USER, Role.TENANT_ADMIN)


def tenant_view(*, roles: Iterable[str] = MEMBER_ROLES) -> Callable[[ViewFunc], ViewFunc]:
    allowed = frozenset(roles)

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            tenant = getattr(request, "tenant", None)
            if tenant is None or tenant.is_platform:
                raise Http404
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not allowed & set(request.user.roles):  # type: ignore[union-attr]
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.tenant_access = allowed  # type: ignore[attr-defined]
        return wrapped

    return decorator


def public_view(view: ViewFunc) -> ViewFunc:
    """Marks a view that needs no sign-in (landing, sign-in failure, signed-out pages)."""
    view.tenant_access = "public"  # type: ignore[attr-defined]
    return view
