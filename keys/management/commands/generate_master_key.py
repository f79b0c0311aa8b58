from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from keys.kms import generate_master_key_entry


class Command(BaseCommand):
    help = "Print a new master key entry for CONVOSUITE_MASTER_KEYS (put it first to make it current)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_id", help="a short name for the key, e.g. 2026-11")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(generate_master_key_entry(options["key_id"]))
