"""Forms of the console's control pages: they parse and bound the input; gateway.actions validates the
configuration itself (and its PolicyError messages are shown next to the form)."""

import datetime as dt
import functools
import zoneinfo
from typing import Any

from django import forms

from gateway.models import GatewayPolicy

MAX_TOKENS = 10**12
MAX_PER_MINUTE = 10**9


@functools.cache
def time_zone_choices() -> list[tuple[str, str]]:
    names = sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC")
    return [(name, name.replace("_", " ")) for name in names]


def _count(label: str, *, required: bool = True, maximum: int = MAX_TOKENS) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=required,
        min_value=0,
        max_value=maximum,
        error_messages={
            "required": f"{label} is required.",
            "invalid": "Enter a whole number.",
            "min_value": "Enter 0 or more.",
            "max_value": f"At most {maximum:,}.",
        },
    )


class BudgetsForm(forms.Form):
    daily_token_budget = _count("Daily token budget")
    monthly_token_budget = _count("Monthly token budget")
    monthly_spend_cap = forms.DecimalField(
        label="Monthly spending cap",
        min_value=0,
        max_digits=12,
        decimal_places=2,
        error_messages={
            "required": "Monthly spending cap is required.",
            "invalid": "Enter an amount in US dollars, like 120 or 120.50.",
            "min_value": "Enter 0 or more.",
            "max_decimal_places": "Use at most 2 decimals (cents).",
            "max_digits": "That amount is too large.",
            "max_whole_digits": "That amount is too large.",
        },
    )
    user_daily_token_cap = _count("Per-user daily cap", required=False)
    requests_per_minute = _count("Requests per minute", maximum=MAX_PER_MINUTE)
    tokens_per_minute = _count("Tokens per minute")
    user_requests_per_minute = _count("Per-user requests/min", required=False, maximum=MAX_PER_MINUTE)
    user_tokens_per_minute = _count("Per-user tokens/min", required=False)
    budget_alert_percent = forms.IntegerField(
        label="Alert threshold",
        required=False,
        min_value=1,
        max_value=100,
        error_messages={
            "invalid": "Enter a whole percentage.",
            "min_value": "Enter a percentage between 1 and 100 (or leave it empty for no alerts).",
            "max_value": "Enter a percentage between 1 and 100 (or leave it empty for no alerts).",
        },
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=time_zone_choices,
        error_messages={
            "required": "Choose the time zone in which budgets reset.",
            "invalid_choice": "%(value)s is not a known time zone.",
        },
    )

    BUDGET_FIELDS = {
        "daily_token_budget": "daily_tokens",
        "monthly_token_budget": "monthly_tokens",
        "monthly_spend_cap": "monthly_spend_cap",
        "user_daily_token_cap": "user_daily_tokens",
        "budget_alert_percent": "alert_percent",
    }
    RATE_FIELDS = (
        "requests_per_minute",
        "tokens_per_minute",
        "user_requests_per_minute",
        "user_tokens_per_minute",
    )

    @classmethod
    def initial_from(cls, policy: GatewayPolicy, time_zone: str) -> dict[str, Any]:
        initial = {name: getattr(policy, name) for name in [*cls.BUDGET_FIELDS, *cls.RATE_FIELDS]}
        return {**initial, "time_zone": time_zone}

    def changes(
        self, policy: GatewayPolicy, time_zone: str
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """Only what differs from the current policy: keyword arguments for do_set_budget and
        do_set_rate_limits, and the new time zone (or None), so the audit log records real changes only."""
        data = self.cleaned_data
        budget = {
            argument: data[field]
            for field, argument in self.BUDGET_FIELDS.items()
            if data[field] != getattr(policy, field)
        }
        rates = {field: data[field] for field in self.RATE_FIELDS if data[field] != getattr(policy, field)}
        return budget, rates, (data["time_zone"] if data["time_zone"] != time_zone else None)


class ApiKeyForm(forms.Form):
    """A new API key: name, model scope, expiry and the key's own limits (all but the name optional)."""

    name = forms.CharField(
        label="Name",
        max_length=100,
        error_messages={
            "required": "Give the key a name, so you can tell it apart later.",
            "max_length": "Key names are limited to 100 characters.",
        },
    )
    models = forms.MultipleChoiceField(label="Models", required=False, choices=[])
    expires_on = forms.DateField(
        label="Expires",
        required=False,
        error_messages={"invalid": "Enter a date like 2027-01-31."},
    )
    daily_token_budget = forms.IntegerField(
        label="Daily token budget",
        required=False,
        min_value=1,
        max_value=MAX_TOKENS,
        error_messages={
            "invalid": "Enter a whole number.",
            "min_value": "At least 1 (leave it empty for no budget of its own).",
            "max_value": f"At most {MAX_TOKENS:,}.",
        },
    )
    requests_per_minute = forms.IntegerField(
        label="Requests per minute",
        required=False,
        min_value=1,
        max_value=MAX_PER_MINUTE,
        error_messages={
            "invalid": "Enter a whole number.",
            "min_value": "At least 1 (leave it empty for no limit of its own).",
            "max_value": f"At most {MAX_PER_MINUTE:,}.",
        },
    )

    def __init__(self, *args: Any, allowed_models: list[str], today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        models_field: Any = self.fields["models"]
        models_field.choices = [(alias, alias) for alias in allowed_models]
        models_field.error_messages["invalid_choice"] = "%(value)s is not one of the models you allow."

    def clean_name(self) -> str:
        name = " ".join(str(self.cleaned_data["name"]).split())
        if not name:
            raise forms.ValidationError("Give the key a name, so you can tell it apart later.")
        return name

    def clean_expires_on(self) -> dt.date | None:
        expires_on: dt.date | None = self.cleaned_data.get("expires_on")
        if expires_on is not None and expires_on < self.today:
            raise forms.ValidationError("Choose today or a later date.")
        return expires_on

    def expires_at(self, time_zone: str) -> dt.datetime | None:
        """A key that expires on a date works through that whole day (the tenant's day)."""
        expires_on: dt.date | None = self.cleaned_data.get("expires_on")
        if expires_on is None:
            return None
        return dt.datetime.combine(
            expires_on + dt.timedelta(days=1), dt.time.min, zoneinfo.ZoneInfo(time_zone)
        )
