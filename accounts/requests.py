"""The request a view behind the access gate receives, typed (instead of a `type: ignore` per use)."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import User
from tenants.models import Tenant


class TenantRequest(HttpRequest):
    """What a view wrapped by accounts.access (tenant_view, platform_view) receives: django-tenants set
    `tenant` from the domain (the platform's own tenant on the platform domain), the gate let only a
    signed-in accounts.User through, and django-htmx set `htmx`. Annotate such a view's `request` with it;
    Django passes the same HttpRequest object, this only tells the type checker what the middleware and
    the gate guarantee."""

    tenant: Tenant
    user: User
    htmx: HtmxDetails
