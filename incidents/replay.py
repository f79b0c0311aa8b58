"""Replay a tenant's audit trail for a window: which model calls were made, by whom, with which key, and what
changed in its control plane, in time order, with both hash chains checked over the window. For the recovery
step of a compromise (`manage.py incident_replay`, the console's incident page)."""

import datetime as dt
from dataclasses import dataclass

from accounts.models import User
from audit.models import AuditEvent
from gateway.api.models import KEY_SOURCE_PREFIX, ApiKey
from gateway.models import ModelCall
from incidents.blast_radius import chain_breaks

MAX_ROWS = 5000


@dataclass(frozen=True)
class ReplayLine:
    at: dt.datetime
    chain: str  # "model_calls" or "audit_events"
    seq: int | None
    what: str  # "ok sim-model 143 tokens $0.0003" / "gateway.kill_switch_on"
    who: str  # user e-mail, API key name and prefix, or actor label
    key: str  # API key prefix, "" when not a key


@dataclass(frozen=True)
class Replay:
    lines: list[ReplayLine]
    calls: int
    by_key: dict[str, int]
    by_user: dict[str, int]
    chain_breaks: list[str]
    truncated: bool


def replay_window(start: dt.datetime, end: dt.datetime, *, key_prefix: str = "") -> Replay:
    """In the current tenant's schema."""
    keys = {
        f"{KEY_SOURCE_PREFIX}{p}": f"key “{n}” ({p})" for p, n in ApiKey.objects.values_list("prefix", "name")
    }
    users = dict(User.objects.values_list("pk", "email"))
    calls = ModelCall.objects.filter(created_at__gte=start, created_at__lt=end)
    if key_prefix:
        calls = calls.filter(source=f"{KEY_SOURCE_PREFIX}{key_prefix}")
    lines: list[ReplayLine] = []
    by_key: dict[str, int] = {}
    by_user: dict[str, int] = {}
    seqs: list[int] = []
    for call in calls.order_by("created_at")[:MAX_ROWS].only(
        "created_at", "seq", "status", "error_code", "model_requested", "tokens_in", "tokens_out", "cost",
        "source", "user_id",
    ):  # fmt: skip
        key = call.source.removeprefix(KEY_SOURCE_PREFIX) if call.source.startswith(KEY_SOURCE_PREFIX) else ""
        who = keys.get(call.source) or users.get(call.user_id or 0) or call.source or "-"
        if key:
            by_key[who] = by_key.get(who, 0) + 1
        elif call.user_id:
            by_user[who] = by_user.get(who, 0) + 1
        status = call.status + (f" ({call.error_code})" if call.error_code else "")
        lines.append(
            ReplayLine(
                at=call.created_at,
                chain="model_calls",
                seq=call.seq,
                what=f"{status} {call.model_requested} {call.tokens_in + call.tokens_out} tokens ${call.cost:.6f}",
                who=who,
                key=key,
            )
        )
        if call.seq:
            seqs.append(call.seq)
    event_seqs: list[int] = []
    if not key_prefix:
        for event in AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end).order_by("seq")[
            :MAX_ROWS
        ]:
            lines.append(
                ReplayLine(
                    at=event.created_at,
                    chain="audit_events",
                    seq=event.seq,
                    what=event.kind,
                    who=event.actor_label or users.get(event.actor_id or 0, "-"),
                    key="",
                )
            )
            event_seqs.append(event.seq)
    breaks: list[str] = []
    for chain, model_class, found in (
        ("model_calls", ModelCall, seqs),
        ("audit_events", AuditEvent, event_seqs),
    ):
        if found:
            breaks += [f"{chain} seq {s}: {r}" for s, r in chain_breaks(model_class, min(found), max(found))]
    lines.sort(key=lambda line: (line.at, line.chain))
    return Replay(
        lines=lines,
        calls=sum(1 for line in lines if line.chain == "model_calls"),
        by_key=by_key,
        by_user=by_user,
        chain_breaks=breaks,
        truncated=calls.count() > MAX_ROWS,
    )
