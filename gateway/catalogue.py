"""Changes to the platform's model catalogue. Each writes a CatalogueChange row (who, when, before/after) in
the same transaction, and after commit tells every process to reload its cached catalogue."""

from decimal import Decimal
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db import connection, transaction

from catalogue.models import CatalogueChange, CatalogueEntry
from gateway import breaker
from gateway.config import announce_catalogue_change

# Everything but the alias, which never changes once tenants may refer to it.
EDITABLE_FIELDS = [
    "kind",
    "litellm_model",
    "provider",
    "api_base",
    "api_key_env",
    "input_cost_per_token",
    "output_cost_per_token",
    "max_tokens",
    "timeout_seconds",
    "tokenizer",
    "template_tokens",
    "context_window",
    "enabled",
]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


@transaction.atomic
def do_save_catalogue_entry(entry: CatalogueEntry, *, acting_label: str) -> CatalogueChange | None:
    """Add or change an entry (validated by the caller: catalogue/forms.py). None if nothing changed."""
    before = CatalogueEntry.objects.select_for_update().filter(pk=entry.pk).first() if entry.pk else None
    if before is not None and before.alias != entry.alias:
        raise ValueError("A catalogue alias never changes: tenants' allow-lists and call records name it.")
    changes = {
        name: [_text(getattr(before, name)) if before is not None else "", _text(getattr(entry, name))]
        for name in EDITABLE_FIELDS
        if before is None or getattr(before, name) != getattr(entry, name)
    }
    entry.save()
    if before is not None and not changes:
        return None
    record = CatalogueChange.objects.create(
        alias=entry.alias,
        action=CatalogueChange.Action.ADDED if before is None else CatalogueChange.Action.CHANGED,
        actor_label=acting_label[:200],
        changes=changes,
    )
    transaction.on_commit(announce_catalogue_change)
    return record


def seed_entry(alias: str, seed: dict[str, Any]) -> CatalogueEntry:
    """A catalogue entry from its seed in settings.GATEWAY_MODELS (same keys as the model's fields)."""

    def price(name: str) -> Decimal | None:
        value = seed.get(name)
        return None if value in (None, "") else Decimal(str(value))

    return CatalogueEntry(
        alias=alias,
        kind=seed.get("kind", CatalogueEntry.Kind.CHAT),
        litellm_model=seed["litellm_model"],
        provider=seed.get("provider", ""),
        api_base=seed.get("api_base", ""),
        api_key_env=seed.get("api_key_env", ""),
        input_cost_per_token=price("input_cost_per_token"),
        output_cost_per_token=price("output_cost_per_token"),
        max_tokens=int(seed.get("max_tokens", 256)),
        timeout_seconds=float(seed.get("timeout_seconds", 60)),
        tokenizer=seed.get("tokenizer", ""),
        template_tokens=int(seed.get("template_tokens", 64)),
        context_window=seed.get("context_window"),
        enabled=bool(seed.get("enabled", True)),
    )


@transaction.atomic
def do_seed_catalogue(*, acting_label: str, refresh_endpoints: bool = False) -> list[str]:
    """Insert the entries of settings.GATEWAY_MODELS that the catalogue lacks; an existing entry (perhaps
    edited by a platform admin) is left as it is. Returns the aliases added.

    refresh_endpoints (development: `make up` picks the local model's port): an existing entry's api_base
    is set to its seed's, recorded as a change like any other."""
    existing = {entry.alias: entry for entry in CatalogueEntry.objects.all()}
    added = []
    for alias, seed in settings.GATEWAY_MODELS.items():
        if alias in existing:
            entry = existing[alias]
            if refresh_endpoints and entry.api_base != seed.get("api_base", ""):
                entry.api_base = seed.get("api_base", "")
                do_save_catalogue_entry(entry, acting_label=acting_label)
            continue
        entry = seed_entry(alias, seed)
        entry.full_clean()
        entry.save()
        CatalogueChange.objects.create(
            alias=alias,
            action=CatalogueChange.Action.SEEDED,
            actor_label=acting_label[:200],
            changes={name: ["", _text(getattr(entry, name))] for name in EDITABLE_FIELDS},
        )
        added.append(alias)
    if added:
        transaction.on_commit(announce_catalogue_change)
    return added


def do_reset_circuit(alias: str, *, acting_label: str) -> None:
    """Close the model's circuit breaker now (every worker sees it at once), and record who did it."""
    if not CatalogueEntry.objects.filter(alias=alias).exists():
        raise CatalogueEntry.DoesNotExist(f"{alias!r} is not in the catalogue.")
    breaker.reset(alias)
    CatalogueChange.objects.create(
        alias=alias, action=CatalogueChange.Action.CIRCUIT_RESET, actor_label=acting_label[:200]
    )


def seed_catalogue_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    """Every migrated database has at least the seed catalogue (missing entries only, never overwriting), so
    a new tenant's default policy always finds its default model, whatever order a deploy runs commands in."""
    if getattr(connection, "schema_name", "public") != "public":
        return  # django-tenants migrates each tenant schema too; the catalogue lives in public only
    do_seed_catalogue(acting_label="manage.py migrate")
