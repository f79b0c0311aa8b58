from typing import Any

from django.core.management.base import BaseCommand

from keys.kms import get_kms
from lifecycle.rotation import do_rewrap_data_keys


class Command(BaseCommand):
    help = (
        "Re-wrap every tenant data key with the current master key (the first CONVOSUITE_MASTER_KEYS "
        "entry). Safe while the product runs; rows are not touched."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        changed = do_rewrap_data_keys(log=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(f"{changed} data key(s) now wrapped by {get_kms().current_master_key_id()}.")
        )
