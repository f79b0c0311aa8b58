"""manage.py gateway_circuits [--reset ALIAS]: circuit-breaker state of every catalogue model, shared by
all workers (for platform admins; the same page is in the platform admin: Model catalogue -> Circuit
breakers). A reset is recorded as a catalogue change, whichever of the two made it."""

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway import breaker
from gateway.catalogue import do_reset_circuit
from gateway.config import catalogue_aliases


def _when(timestamp: float) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Command(BaseCommand):
    help = "Show (or reset) the circuit breaker of each model in the platform catalogue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", metavar="ALIAS", help="close this model's circuit now")

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = catalogue_aliases()
        if options["reset"]:
            if options["reset"] not in aliases:
                raise CommandError(f"{options['reset']!r} is not in the catalogue.")
            do_reset_circuit(options["reset"], acting_label="manage.py gateway_circuits")
            self.stdout.write(f"{options['reset']}: circuit closed")
        header = f"{'model':<20} {'state':<10} {'failures':>8} {'opened':>6}  {'open until':<24} last error"
        self.stdout.write(header)
        for alias, state in breaker.states(aliases).items():
            self.stdout.write(
                f"{alias:<20} {state.state:<10} {state.failures:>8} {state.times_opened:>6}  "
                f"{_when(state.opened_until):<24} {state.last_error[:80] or '-'}"
            )
