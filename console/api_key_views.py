"""The console's API keys page: list, create (POST-redirect-GET), the one-time secret page, revoke.

Creating a key answers with a redirect (303) to the key's "created" page, which shows the secret once: the
secret travels in the admin's session, encrypted with the tenant's data key, and is removed from the session
by the page that shows it. Reloading that page (or going back to it) shows no secret and creates nothing.
"""

import uuid
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from accounts.models import Role
from accounts.requests import TenantRequest
from console.callers import key_tokens_between
from console.forms import ApiKeyForm
from console.nav import nav_sections
from gateway.actions import access_gateway_policy
from gateway.api.actions import ApiKeyRejected, access_api_key_by_id, do_create_api_key, do_revoke_api_key
from gateway.api.models import ApiKey
from gateway.policy import period_bounds, tenant_now
from keys.crypto import EncryptionError, decrypt_text, encrypt_text

ADMINS = [Role.TENANT_ADMIN.value]
KEYS_PER_PAGE = 50
# The session entry that carries a new key's secret from the POST to the page that shows it, once.
NEW_KEY_SESSION_KEY = "console.new_api_key"


def _schema(request: TenantRequest) -> str:
    return str(request.tenant.schema_name)


def _time_zone(request: TenantRequest) -> str:
    return str(request.tenant.time_zone)


def api_base_url(request: TenantRequest) -> str:
    """The tenant API's base URL as programs reach it: this tenant's own domain (it selects the tenant)."""
    return f"{request.scheme}://{request.get_host()}/v1"


def _key_rows(page: Any, time_zone: str) -> list[dict[str, Any]]:
    local_now = tenant_now(time_zone)
    day_start, _, next_day = period_bounds(local_now)
    used_today = key_tokens_between(day_start, next_day)
    rows = []
    for key in page:
        tokens = used_today.get(key.call_source, 0)
        budget = key.daily_token_budget
        status = "revoked" if key.revoked_at else "expired" if key.is_expired else "active"
        rows.append(
            {
                "key": key,
                "status": status,
                "tokens_today": tokens,
                "budget_percent": min(100, int(tokens * 100 / budget)) if budget else None,
                # The last day it works (expires_at is the midnight after it, in the tenant's zone).
                "last_day": (key.expires_at.astimezone(local_now.tzinfo) - timedelta(seconds=1)).date()
                if key.expires_at
                else None,
            }
        )
    return rows


def _page(request: TenantRequest, form: ApiKeyForm, *, error: str = "", status: int = 200) -> HttpResponse:
    keys = ApiKey.objects.select_related("created_by").order_by("revoked_at", "-created_at")
    page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "nav": nav_sections("api-keys"),
        "active": "api-keys",
        "page": page,
        "rows": _key_rows(page, _time_zone(request)),
        "query": "",
        "form": form,
        "error": error,
        "base_url": api_base_url(request),
        "example_model": access_gateway_policy().default_model,
        "today": tenant_now(_time_zone(request)).date(),
    }
    return render(request, "console/api_keys.html", context, status=status)


def _form(request: TenantRequest, data: Any = None) -> ApiKeyForm:
    return ApiKeyForm(
        data,
        allowed_models=access_gateway_policy().allowed_models,
        today=tenant_now(_time_zone(request)).date(),
    )


@require_GET
@tenant_view(roles=ADMINS)
def api_keys(request: TenantRequest) -> HttpResponse:
    return _page(request, _form(request))


@require_POST
@tenant_view(roles=ADMINS)
def api_key_create(request: TenantRequest) -> HttpResponse:
    form = _form(request, request.POST)
    if not form.is_valid():
        return _page(request, form, error="The key was not created: see below.", status=400)
    data = form.cleaned_data
    try:
        created = do_create_api_key(
            name=data["name"],
            models=data["models"],
            acting_user=request.user,
            expires_at=form.expires_at(_time_zone(request)),
            daily_token_budget=data["daily_token_budget"],
            requests_per_minute=data["requests_per_minute"],
        )
    except ApiKeyRejected as refusal:
        return _page(request, form, error=str(refusal), status=400)
    # Encrypted with the tenant's key while it waits in the session for the one page that shows it.
    request.session[NEW_KEY_SESSION_KEY] = {
        "key_id": str(created.api_key.id),
        "secret": encrypt_text(created.secret, schema=_schema(request), remember=False),
    }
    # 303: the browser follows with a GET, so reloading the next page never posts the form again.
    response = redirect("console:api_key_created", key_id=created.api_key.id)
    response.status_code = 303
    return response


def _take_secret(request: TenantRequest, key_id: uuid.UUID) -> str | None:
    """The new key's secret, removed from the session as it is read: it can be shown only once."""
    pending = request.session.get(NEW_KEY_SESSION_KEY)
    if not isinstance(pending, dict) or pending.get("key_id") != str(key_id):
        return None
    del request.session[NEW_KEY_SESSION_KEY]
    try:
        return decrypt_text(str(pending.get("secret", "")), schema=_schema(request), remember=False)
    except EncryptionError:
        return None


@require_GET
@tenant_view(roles=ADMINS)
def api_key_created(request: TenantRequest, key_id: uuid.UUID) -> HttpResponse:
    api_key = access_api_key_by_id(key_id)
    context = {
        "nav": nav_sections("api-keys"),
        "active": "api-keys",
        "api_key": api_key,
        "secret": _take_secret(request, key_id),
        "base_url": api_base_url(request),
        "example_model": (api_key.model_scope or [access_gateway_policy().default_model])[0],
    }
    response = render(request, "console/api_key_created.html", context)
    # Neither the browser nor a proxy may keep the page that shows a secret.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@tenant_view(roles=ADMINS)
def api_key_revoke(request: TenantRequest, key_id: uuid.UUID) -> HttpResponse:
    api_key = access_api_key_by_id(key_id)
    if api_key.revoked_at is not None:
        messages.info(request, f"The key {api_key.name} was already revoked.")
    else:
        do_revoke_api_key(api_key, acting_user=request.user)
        messages.success(
            request, f"The key {api_key.name} is revoked: requests with it are refused from now on."
        )
    return redirect("console:api_keys")
