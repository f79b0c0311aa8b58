"""The model catalogue in the platform's Django admin: models, prices and circuit breakers.

Saving goes through gateway.catalogue (a CatalogueChange row per change, then every process reloads);
Django's own LogEntry is written as for any admin change. Entries are never deleted (tenants' allow-lists
and call records name them): disable one instead."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from catalogue.models import DEFAULT_TEMPLATE_TOKENS, CatalogueChange, CatalogueEntry
from convosuite.read_only_admin import ReadOnlyModelAdmin
from gateway import breaker
from gateway.catalogue import do_reset_circuit, do_save_catalogue_entry
from gateway.config import litellm_price
from gateway.tokens import check_spec


def staff_label(request: HttpRequest) -> str:
    return f"platform admin {getattr(request.user, 'email', '') or request.user} (Django admin)"


def per_million(cost_per_token: Decimal) -> str:
    return f"${cost_per_token * 1_000_000:,.4f}".rstrip("0").rstrip(".")


class CatalogueEntryForm(forms.ModelForm):
    class Meta:
        model = CatalogueEntry
        fields = [
            "alias",
            "kind",
            "enabled",
            "litellm_model",
            "provider",
            "api_base",
            "api_key_env",
            "timeout_seconds",
            "input_cost_per_token",
            "output_cost_per_token",
            "max_tokens",
            "tokenizer",
            "template_tokens",
            "context_window",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Blank takes the default (a form written before the field existed posts none).
        self.fields["template_tokens"].required = False

    def clean_template_tokens(self) -> int:
        value = self.cleaned_data.get("template_tokens")
        return DEFAULT_TEMPLATE_TOKENS if value is None else int(value)

    def clean_tokenizer(self) -> str:
        spec = str(self.cleaned_data.get("tokenizer") or "").strip()
        problem = check_spec(spec)
        if problem:
            raise forms.ValidationError(problem)
        return spec

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        prices = [cleaned.get("input_cost_per_token"), cleaned.get("output_cost_per_token")]
        if self.errors.keys() & {"input_cost_per_token", "output_cost_per_token", "litellm_model"}:
            return cleaned
        if (prices[0] is None) != (prices[1] is None):
            raise forms.ValidationError(
                "Give both prices (input and output), or leave both blank to use LiteLLM's price map."
            )
        if prices[0] is None and litellm_price(cleaned.get("litellm_model", "")) is None:
            raise forms.ValidationError(
                f"LiteLLM's price map has no price for {cleaned.get('litellm_model')!r}: enter the input and "
                "output price per token (0 for a self-hosted model). A model without a price cannot be "
                "counted against budgets."
            )
        return cleaned


@admin.register(CatalogueEntry)
class CatalogueEntryAdmin(admin.ModelAdmin):
    form = CatalogueEntryForm
    change_list_template = "admin/catalogue/catalogueentry/change_list.html"
    # A catalogue is tens of models: no filter sidebar, so every column (circuit included) fits beside the
    # admin's navigation; the LiteLLM model and endpoint are on the change form, and searchable.
    list_display = ("alias", "kind", "provider", "price", "max_tokens", "enabled")
    search_fields = ("alias", "litellm_model", "provider")
    fieldsets = [
        (None, {"fields": ["alias", "kind", "enabled"]}),
        (
            "Deployment",
            {"fields": ["litellm_model", "provider", "api_base", "api_key_env", "timeout_seconds"]},
        ),
        (
            "Price and limits",
            {
                "fields": ["input_cost_per_token", "output_cost_per_token", "max_tokens"],
                "description": "USD per token. Leave both prices blank to use LiteLLM's bundled price map. "
                "A new price applies to calls reserved after the change (within about a second in every "
                "worker); calls already recorded keep the price they were charged at.",
            },
        ),
        (
            "Token counting",
            {
                "fields": ["tokenizer", "template_tokens", "context_window"],
                "description": "Before a call, the gateway reserves the prompt's tokens plus the answer's cap "
                "against the tenant's budget: the count must never be below what the model will report.",
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("alias",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: CatalogueEntry, form: Any, change: bool) -> None:
        do_save_catalogue_entry(obj, acting_label=staff_label(request))

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        # The circuit column reads every breaker in one Redis round trip per page, kept with this request
        # (the ModelAdmin itself is shared by all requests).
        states = breaker.states(list(CatalogueEntry.objects.values_list("alias", flat=True)))

        @admin.display(description="Circuit")
        def circuit(entry: CatalogueEntry) -> str:
            state = states.get(entry.alias)
            if state is None:
                return "-"
            url = reverse("admin:catalogue_catalogueentry_circuits")
            return format_html('<a href="{}#circuit-{}">{}</a>', url, entry.alias, state.state)

        return (*self.list_display, circuit)

    @admin.display(description="Price in · out per 1M tokens")
    def price(self, entry: CatalogueEntry) -> str:
        if entry.input_cost_per_token is not None and entry.output_cost_per_token is not None:
            return f"{per_million(entry.input_cost_per_token)} · {per_million(entry.output_cost_per_token)}"
        found = litellm_price(entry.litellm_model)
        if found is None:
            return "no price (cannot be allowed)"
        return f"{per_million(found[0])} · {per_million(found[1])} (LiteLLM)"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "circuits/",
                self.admin_site.admin_view(self.circuits_view),
                name="catalogue_catalogueentry_circuits",
            ),
            path(
                "circuits/reset/",
                self.admin_site.admin_view(require_POST(self.reset_circuit_view)),
                name="catalogue_catalogueentry_reset_circuit",
            ),
            *super().get_urls(),
        ]

    def circuits_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        aliases = list(CatalogueEntry.objects.values_list("alias", flat=True))
        rows = [
            {
                "alias": state.alias,
                "state": state.state,
                "failures": state.failures,
                "times_opened": state.times_opened,
                "last_error": state.last_error,
                "last_failure_at": _when(state.last_failure_at),
                "opened_until": _when(state.opened_until),
                "resettable": not state.is_clean,
            }
            for state in breaker.states(aliases).values()
        ]
        resets = CatalogueChange.objects.filter(action=CatalogueChange.Action.CIRCUIT_RESET)[:10]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Circuit breakers",
            "rows": rows,
            "resets": resets,
            "can_reset": self.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/catalogue/circuits.html", context)

    def reset_circuit_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        alias = request.POST.get("alias", "")
        try:
            do_reset_circuit(alias, acting_label=staff_label(request))
        except CatalogueEntry.DoesNotExist:
            self.message_user(request, f"{alias!r} is not in the catalogue.", messages.ERROR)
        else:
            self.message_user(request, f"The circuit of {alias} is closed.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:catalogue_catalogueentry_circuits"))


def _when(timestamp: float) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC) if timestamp else None


@admin.register(CatalogueChange)
class CatalogueChangeAdmin(ReadOnlyModelAdmin):
    """Who changed which model or price, when: written by gateway.catalogue, read-only here."""

    list_display = ("at", "alias", "action", "actor_label", "summary")
    # No filter sidebar: the changes column needs the width. Search finds a model or a person.
    search_fields = ("alias", "actor_label")
    readonly_fields = ("at", "alias", "action", "actor_label", "changes")

    @admin.display(description="Changes")
    def summary(self, change: CatalogueChange) -> str:
        if change.action in {CatalogueChange.Action.ADDED, CatalogueChange.Action.SEEDED}:
            after = {name: values[1] for name, values in change.changes.items()}
            price = (
                f"{after.get('input_cost_per_token')} in · {after.get('output_cost_per_token')} out per token"
                if after.get("input_cost_per_token")
                else "no price of its own (LiteLLM's, if any)"
            )
            return f"{after.get('litellm_model', '')}, {price}"
        return "; ".join(
            f"{name}: {before or '—'} → {after or '—'}" for name, (before, after) in change.changes.items()
        )[:300]
