"""manage.py incident_replay --tenant SLUG --since T --until T [--key PREFIX]: replay a tenant's audit trail for a
window — every model call (by whom, with which API key, status, model, tokens, cost) and every control-plane
event, in time order — with both hash chains checked over the window. Times are ISO 8601, UTC unless they say."""

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway.management.commands._tenant import add_tenant_argument, in_tenant
from incidents.replay import replay_window


def _moment(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"{value!r} is not a date and time (e.g. 2026-12-04T17:30).")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Replay a tenant's model calls and audit events for a window, with the chains checked."

    def add_arguments(self, parser: Any) -> None:
        add_tenant_argument(parser)
        parser.add_argument("--since", required=True)
        parser.add_argument("--until", default="")
        parser.add_argument("--key", default="", help="only the calls of this API key prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _moment(options["since"])
        until = _moment(options["until"]) if options["until"] else timezone.now()
        with in_tenant(options["tenant"]):
            replay = replay_window(since, until, key_prefix=options["key"])
        for line in replay.lines:
            seq = f"#{line.seq}" if line.seq else "-"
            kind = "call " if line.chain == "model_calls" else "event"
            self.stdout.write(f"{line.at:%Y-%m-%d %H:%M:%S} {kind} {seq:>8}  {line.what:<52} {line.who}")
        self.stdout.write("")
        self.stdout.write(f"{replay.calls} call(s){' (first 5000 shown)' if replay.truncated else ''}")
        for who, count in sorted(replay.by_key.items()) + sorted(replay.by_user.items()):
            self.stdout.write(f"   {who}: {count}")
        self.stdout.write(
            "chains: " + ("; ".join(replay.chain_breaks) if replay.chain_breaks else "intact over the window")
        )
