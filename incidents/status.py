"""Provider outage: the public status page's state per model, set from the shared circuit breakers.

Mapping (gateway/breaker.py): open -> outage (calls skip the model: served by the tenant's fallback, or
refused with "unavailable"); half-open -> degraded (one trial call is let through); closed -> operational.
A platform admin may pin a state (e.g. maintenance) and write a public note; both show until cleared.

The state is synced (sync_model_statuses):
- by the process that opens or closes a breaker, at once (gateway.hooks.on_breaker_change);
- by the status page itself, at most every SYNC_THROTTLE_SECONDS (half-open is a matter of time, no call
  announces it), and by the beat task `incidents.sync_service_status`.
Every change of the shown state is a StatusChange row (the page's history). An outage opens a platform
incident (one per model while it lasts), which the return to operational resolves; tenants that chose outage
e-mails are told when it starts and ends (incidents.tasks); a post-mortem is drafted when it ends.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from catalogue.models import CatalogueEntry
from gateway import breaker, store
from incidents.actions import (
    IncidentRejected,
    do_add_timeline_event,
    do_open_incident,
    do_set_incident_status,
)
from incidents.models import Incident, IncidentEvent, ModelStatus, ServiceState, StatusChange
from tenants.models import Domain

logger = logging.getLogger(__name__)

SYNC_THROTTLE_SECONDS = 2
DETECTOR = "circuit breaker"
HISTORY_BUCKETS = 48  # the page's bar: 48 half hours
BUCKET = dt.timedelta(minutes=30)
_SEVERITY = {
    ServiceState.OPERATIONAL: 0,
    ServiceState.MAINTENANCE: 1,
    ServiceState.DEGRADED: 2,
    ServiceState.OUTAGE: 3,
}


def state_from_breaker(state: breaker.BreakerState) -> str:
    return {
        "open": ServiceState.OUTAGE,
        "half-open": ServiceState.DEGRADED,
    }.get(state.state, ServiceState.OPERATIONAL)


@dataclass(frozen=True)
class Transition:
    alias: str
    previous: str
    state: str
    incident_id: int | None


def _outage_key(alias: str) -> str:
    return f"outage:{alias}"


def sync_model_statuses(aliases: list[str] | None = None, *, throttle: bool = False) -> list[Transition]:
    """Bring ModelStatus in line with the breakers; returns the changes made (and acts on them)."""
    if throttle and not store.client().set(
        f"inc:{{{store.namespace()}}}:status-sync", "1", nx=True, ex=SYNC_THROTTLE_SECONDS
    ):
        return []
    entries = CatalogueEntry.objects.filter(enabled=True)
    if aliases:
        entries = entries.filter(alias__in=aliases)
    known = {entry.alias: entry.provider for entry in entries}
    if not known:
        return []
    states = breaker.states(list(known))
    transitions = []
    for alias, provider in known.items():
        wanted = state_from_breaker(states[alias])
        transition = _apply(alias, provider, wanted, states[alias].last_error)
        if transition is not None:
            transitions.append(transition)
    return transitions


def _apply(alias: str, provider: str, wanted: str, last_error: str) -> Transition | None:
    now = timezone.now()
    with transaction.atomic():
        row, _ = ModelStatus.objects.select_for_update().get_or_create(
            alias=alias, defaults={"provider": provider, "since": now}
        )
        if row.state == wanted:
            return None
        previous = row.state
        row.state, row.since, row.provider = wanted, now, provider
        row.save(update_fields=["state", "since", "provider", "updated_at"])
        incident = _incident_for(alias, provider, previous, wanted, last_error)
        if not row.override:
            StatusChange.objects.create(
                alias=alias, provider=provider, at=now, state=wanted, source=StatusChange.Source.BREAKER,
                incident=incident,
            )  # fmt: skip
    logger.warning("model status %s: %s -> %s", alias, previous, wanted)
    transition = Transition(alias, previous, wanted, incident.pk if incident else None)
    transaction.on_commit(lambda: _after(transition))
    return transition


def _incident_for(alias: str, provider: str, previous: str, wanted: str, last_error: str) -> Incident | None:
    current = Incident.objects.filter(
        dedupe_key=_outage_key(alias), status__in=[Incident.Status.OPEN, Incident.Status.CONTAINED]
    ).first()
    if wanted == ServiceState.OUTAGE:
        incident = current or do_open_incident(
            kind=Incident.Kind.PROVIDER_OUTAGE,
            severity=Incident.Severity.HIGH,
            title=f"{alias} ({provider or 'provider'}) unavailable",
            summary=f"The circuit breaker of {alias} opened after repeated failures: calls go to each tenant's "
            "fallback where one is configured, otherwise they are refused as unavailable.",
            detected_by=DETECTOR,
            details={"model": alias, "provider": provider, "last_error": last_error[:300]},
            dedupe_key=_outage_key(alias),
        )
        if current is not None:
            do_add_timeline_event(
                current,
                kind=IncidentEvent.Kind.STATUS,
                actor_label=DETECTOR,
                message=f"{alias}: {previous} → outage.",
            )
        return incident
    if current is None:
        return None
    if wanted == ServiceState.OPERATIONAL:
        do_add_timeline_event(
            current,
            kind=IncidentEvent.Kind.STATUS,
            actor_label=DETECTOR,
            message=f"{alias}: breaker closed, operational.",
        )
        return do_set_incident_status(
            current,
            Incident.Status.RESOLVED,
            actor_label=DETECTOR,
            note=f"{alias} answers again; breaker closed.",
        )
    do_add_timeline_event(
        current,
        kind=IncidentEvent.Kind.STATUS,
        actor_label=DETECTOR,
        message=f"{alias}: breaker half-open, trying the provider again.",
    )
    return current


def _after(transition: Transition) -> None:
    """Outside the transaction: tell subscribed tenants (by task name, from the public schema so the task runs
    there; the post-mortem is drafted by the same task when the outage ends)."""
    if transition.incident_id is None:
        return
    if transition.state == ServiceState.OUTAGE and transition.previous == ServiceState.OPERATIONAL:
        phase = "started"
    elif transition.state == ServiceState.OPERATIONAL:
        phase = "ended"
    else:
        return
    with schema_context(get_public_schema_name()):
        current_app.send_task(ANNOUNCE_TASK, args=[transition.incident_id, phase])


ANNOUNCE_TASK = "incidents.announce_outage"


def breaker_changed(alias: str, state: str) -> None:
    """gateway.hooks listener: the process that opened or closed a breaker updates the status at once."""
    sync_model_statuses([alias])


# --- the page -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime
    state: str


@dataclass(frozen=True)
class ModelRow:
    alias: str
    provider: str
    state: str
    since: dt.datetime
    note: str
    pinned: bool
    history: list[Bucket]
    uptime_percent: float


def _history(alias: str, current: str, now: dt.datetime, changes: list[StatusChange]) -> list[Bucket]:
    """Worst state of each half hour of the last day, from the status changes."""
    start = now - BUCKET * HISTORY_BUCKETS
    before = [c for c in changes if c.at < start]
    within = [c for c in changes if c.at >= start]
    # Before its first recorded change a model was operational; with no change at all, it is what it is now.
    state = before[-1].state if before else (ServiceState.OPERATIONAL if changes else current)
    buckets = []
    index = 0
    for number in range(HISTORY_BUCKETS):
        bucket_start = start + BUCKET * number
        bucket_end = bucket_start + BUCKET
        worst = state
        while index < len(within) and within[index].at < bucket_end:
            state = within[index].state
            if _SEVERITY[ServiceState(state)] > _SEVERITY[ServiceState(worst)]:
                worst = state
            index += 1
        buckets.append(Bucket(bucket_start, worst))
    return buckets


def status_page_context(now: dt.datetime | None = None) -> dict[str, object]:
    """What the public status page shows: no tenant, no record, only models, states, times and public notes."""
    now = now or timezone.now()
    offered = set(CatalogueEntry.objects.filter(enabled=True).values_list("alias", flat=True))
    rows_by_alias = {row.alias: row for row in ModelStatus.objects.filter(alias__in=offered)}
    history_start = now - BUCKET * HISTORY_BUCKETS
    changes: dict[str, list[StatusChange]] = {}
    for change in StatusChange.objects.filter(
        alias__in=offered, at__gte=history_start - dt.timedelta(days=30)
    ).order_by("at", "pk"):
        changes.setdefault(change.alias, []).append(change)
    models: list[ModelRow] = []
    for alias in sorted(offered):
        row = rows_by_alias.get(alias)
        state = row.shown_state if row else ServiceState.OPERATIONAL
        history = _history(alias, state, now, changes.get(alias, []))
        good = sum(1 for bucket in history if bucket.state == ServiceState.OPERATIONAL)
        models.append(
            ModelRow(
                alias=alias,
                provider=row.provider if row else "",
                state=state,
                since=row.since if row else now,
                note=row.note if row else "",
                pinned=bool(row and row.override),
                history=history,
                uptime_percent=round(100 * good / len(history), 1),
            )
        )
    worst = max((_SEVERITY[ServiceState(model.state)] for model in models), default=0)
    overall = next(state for state, rank in _SEVERITY.items() if rank == worst)
    notes = list(
        StatusChange.objects.filter(alias__in=offered, at__gte=now - dt.timedelta(days=7)).order_by(
            "-at", "-pk"
        )[:30]
    )
    providers: dict[str, list[ModelRow]] = {}
    for model in models:
        providers.setdefault(model.provider or "other", []).append(model)
    return {
        "overall": overall,
        "providers": sorted(providers.items()),
        "models": models,
        "recent": notes,
        "checked_at": now,
        "history_start": history_start,
    }


def do_set_status_note(*, alias: str, override: str, note: str, actor_label: str) -> ModelStatus:
    """A platform admin pins a state (or clears the pin with "") and writes the public note; both are history."""
    if override and override not in ServiceState.values:
        raise IncidentRejected("Choose a state, or automatic.")
    note = note.strip()
    if len(note) > 500:
        raise IncidentRejected("Keep the public note under 500 characters.")
    entry = CatalogueEntry.objects.filter(alias=alias).first()
    if entry is None:
        raise IncidentRejected(f"No model {alias!r} in the catalogue.")
    with transaction.atomic():
        row, _ = ModelStatus.objects.select_for_update().get_or_create(
            alias=alias, defaults={"provider": entry.provider}
        )
        row.override, row.note = override, note
        row.save(update_fields=["override", "note", "updated_at"])
        incident = Incident.objects.filter(
            dedupe_key=_outage_key(alias), status__in=[Incident.Status.OPEN, Incident.Status.CONTAINED]
        ).first()
        StatusChange.objects.create(
            alias=alias, provider=entry.provider, state=row.shown_state, source=StatusChange.Source.ADMIN,
            note=note, actor_label=actor_label, incident=incident,
        )  # fmt: skip
        if incident is not None and note:
            do_add_timeline_event(
                incident,
                kind=IncidentEvent.Kind.NOTE,
                actor_label=actor_label,
                message=f"Status note: {note}",
            )
    return row


def degraded_models(aliases: list[str]) -> list[ModelStatus]:
    """The tenant's models that are not operational now (the chat and console banner)."""
    return [
        row
        for row in ModelStatus.objects.filter(alias__in=aliases)
        if row.shown_state != ServiceState.OPERATIONAL
    ]


def status_page_url(request: Any = None) -> str:
    """The public status page's address: the setting, or the platform's primary domain with the scheme and port
    of the request that links to it (a tenant's page links across to the platform domain)."""
    if settings.INCIDENTS_STATUS_PAGE_URL:
        return str(settings.INCIDENTS_STATUS_PAGE_URL)
    domain = (
        Domain.objects.filter(tenant__schema_name=get_public_schema_name(), is_primary=True)
        .values_list("domain", flat=True)
        .first()
        or "localhost"
    )
    if request is None:
        return f"http://{domain}/status/"
    port = request.get_port()
    default_port = "443" if request.is_secure() else "80"
    return f"{request.scheme}://{domain}{'' if port == default_port else ':' + port}/status/"
