"""The console's control pages: budgets & limits, kill switch, models (API keys: console.api_key_views).

Thin: parse the form, call the gateway's actions (each validates, changes the tenant's policy, writes the
audit event and publishes the policy to every worker), render. Bad input answers 400 with the page again,
the message next to the field and everything typed kept.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import tenant_view
from accounts.models import Role
from accounts.requests import TenantRequest
from console.forms import BudgetsForm
from console.nav import nav_sections
from gateway.actions import (
    PolicyError,
    access_gateway_policy,
    do_set_budget,
    do_set_kill_switch,
    do_set_model_allow_list,
    do_set_model_fallbacks,
    do_set_rate_limits,
    do_set_time_zone,
)
from gateway.alerts import budget_status
from gateway.config import CHAT_KIND, UnknownModelError, get_model_route, model_kind, offered_entries
from gateway.models import BudgetAlert

ADMINS = [Role.TENANT_ADMIN.value]
MAX_FALLBACKS = 3


def _render(
    request: TenantRequest, template: str, active: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(
        request, template, {"nav": nav_sections(active), "active": active, **context}, status=status
    )


def _schema(request: TenantRequest) -> str:
    return str(request.tenant.schema_name)


def _time_zone(request: TenantRequest) -> str:
    return str(request.tenant.time_zone)


# --- Budgets & limits -----------------------------------------------------------------------------------


def _budgets_page(
    request: TenantRequest, form: BudgetsForm, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "form": form,
        "error": error,
        "status": budget_status(_schema(request)),
        "recent_alerts": list(BudgetAlert.objects.all()[:5]),
    }
    return _render(request, "console/budgets.html", "budgets", context, status=status)


@require_GET
@tenant_view(roles=ADMINS)
def budgets(request: TenantRequest) -> HttpResponse:
    policy = access_gateway_policy()
    return _budgets_page(request, BudgetsForm(initial=BudgetsForm.initial_from(policy, _time_zone(request))))


@require_POST
@tenant_view(roles=ADMINS)
def budgets_save(request: TenantRequest) -> HttpResponse:
    form = BudgetsForm(request.POST)
    if not form.is_valid():
        return _budgets_page(request, form, error="Some values need fixing: see below.", status=400)
    policy = access_gateway_policy()
    budget, rates, time_zone = form.changes(policy, _time_zone(request))
    if not (budget or rates or time_zone):
        messages.info(request, "Nothing changed.")
        return redirect("console:budgets")
    try:
        with transaction.atomic():
            if budget:
                do_set_budget(**budget, actor=request.user)
            if rates:
                do_set_rate_limits(**rates, actor=request.user)
            if time_zone:
                do_set_time_zone(time_zone=time_zone, actor=request.user)
    except PolicyError as refusal:
        return _budgets_page(request, form, error=str(refusal), status=400)
    messages.success(request, "Budgets and limits saved. They apply to the next model call.")
    return redirect("console:budgets")


# --- Kill switch ------------------------------------------------------------------------------------------


def _kill_switch_page(
    request: TenantRequest, *, error: str = "", reason: str = "", status: int = 200
) -> HttpResponse:
    context = {"policy": access_gateway_policy(), "error": error, "reason": reason}
    return _render(request, "console/kill_switch.html", "kill-switch", context, status=status)


@require_GET
@tenant_view(roles=ADMINS)
def kill_switch(request: TenantRequest) -> HttpResponse:
    return _kill_switch_page(request)


@require_POST
@tenant_view(roles=ADMINS)
def kill_switch_set(request: TenantRequest) -> HttpResponse:
    state = request.POST.get("state", "")
    reason = request.POST.get("reason", "").strip()
    if state not in {"on", "off"}:
        return _kill_switch_page(
            request, error="Choose whether to switch the assistant off or back on.", reason=reason, status=400
        )
    if request.POST.get("confirm") != "yes":
        return _kill_switch_page(request, error="Confirm the change first.", reason=reason, status=400)
    stopping = state == "on"
    if stopping and not reason:
        return _kill_switch_page(
            request, error="Write a reason: your users read it in the chat.", reason=reason, status=400
        )
    if len(reason) > 500:
        return _kill_switch_page(
            request, error="Keep the reason under 500 characters.", reason=reason, status=400
        )
    do_set_kill_switch(on=stopping, reason=reason, actor=request.user)
    if stopping:
        messages.warning(request, "The assistant is switched off. Every model call is refused from now on.")
    else:
        messages.success(request, "The assistant is switched back on.")
    return redirect("console:kill_switch")


# --- Models -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueModel:
    alias: str
    kind: str
    provider: str
    allowed: bool
    priced: bool
    price: str
    unavailable_reason: str

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"


def _per_million(cost_per_token: Any) -> str:
    return f"${cost_per_token * 1_000_000:,.2f}"


def catalogue(allowed: list[str]) -> list[CatalogueModel]:
    models = []
    for entry in offered_entries():
        alias, kind = entry.alias, entry.kind
        try:
            route = get_model_route(alias)
        except UnknownModelError:
            models.append(
                CatalogueModel(
                    alias, kind, entry.provider, alias in allowed, False, "",
                    "No price in the catalogue, so its use could not be counted against budgets. "
                    "Ask the ConvoSuite team to price it.",
                )
            )  # fmt: skip
            continue
        price = (
            f"{_per_million(route.input_cost_per_token)} in · {_per_million(route.output_cost_per_token)} out"
            " per 1M tokens"
        )
        models.append(CatalogueModel(alias, kind, route.provider, alias in allowed, True, price, ""))
    return models


def _models_page(
    request: TenantRequest,
    *,
    error: str = "",
    fallback_error: tuple[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    policy = access_gateway_policy()
    models = catalogue(policy.allowed_models)
    chat_allowed = [model.alias for model in models if model.allowed and model.is_chat]
    chains = []
    for alias in chat_allowed:
        chosen = list(policy.fallbacks.get(alias, []))
        if fallback_error and fallback_error[0] == alias and submitted is not None:
            chosen = list(submitted.get("fallbacks", chosen))
        slots = (chosen + [""] * MAX_FALLBACKS)[:MAX_FALLBACKS]
        options = [other for other in chat_allowed if other != alias]
        chains.append({"model": alias, "slots": slots, "options": options,
                       "error": fallback_error[1] if fallback_error and fallback_error[0] == alias else ""})  # fmt: skip
    context = {
        "policy": policy,
        "models": models,
        "chains": chains,
        "error": error,
        "selected": set(submitted["allowed"])
        if submitted and "allowed" in submitted
        else set(policy.allowed_models),
        "default_model": (submitted or {}).get("default_model") or policy.default_model,
    }
    return _render(request, "console/models.html", "models", context, status=status)


@require_GET
@tenant_view(roles=ADMINS)
def models(request: TenantRequest) -> HttpResponse:
    return _models_page(request)


@require_POST
@tenant_view(roles=ADMINS)
def models_save(request: TenantRequest) -> HttpResponse:
    allowed = [alias for alias in request.POST.getlist("allowed") if alias]
    default_model = request.POST.get("default_model", "")
    submitted = {"allowed": allowed, "default_model": default_model}
    if default_model and model_kind(default_model) != CHAT_KIND:
        return _models_page(
            request, error="The default model must be a chat model.", submitted=submitted, status=400
        )
    try:
        do_set_model_allow_list(
            allowed_models=allowed, default_model=default_model or None, actor=request.user
        )
    except PolicyError as refusal:
        return _models_page(request, error=str(refusal), submitted=submitted, status=400)
    messages.success(request, "Models saved. The next model call uses them.")
    return redirect("console:models")


@require_POST
@tenant_view(roles=ADMINS)
def fallbacks_save(request: TenantRequest) -> HttpResponse:
    model = request.POST.get("model", "")
    fallbacks = [alias for alias in request.POST.getlist("fallback") if alias]
    if not model:
        return _models_page(request, error="Choose the model whose fallbacks you are setting.", status=400)
    try:
        do_set_model_fallbacks(model=model, fallbacks=fallbacks, actor=request.user)
    except PolicyError as refusal:
        return _models_page(
            request, fallback_error=(model, str(refusal)), submitted={"fallbacks": fallbacks}, status=400
        )
    messages.success(
        request,
        f"Fallbacks of {model} saved." if fallbacks else f"{model} has no fallbacks now.",
    )
    return redirect("console:models")
