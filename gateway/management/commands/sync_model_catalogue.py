"""manage.py sync_model_catalogue: add the models of settings.GATEWAY_MODELS that the catalogue lacks
(entries already there, perhaps edited in the platform admin, are not touched)."""

from typing import Any

from django.core.management.base import BaseCommand

from gateway.catalogue import do_seed_catalogue


class Command(BaseCommand):
    help = "Insert the seed models of settings.GATEWAY_MODELS missing from the catalogue; never overwrites."

    def handle(self, *args: Any, **options: Any) -> None:
        added = do_seed_catalogue(acting_label="manage.py sync_model_catalogue")
        self.stdout.write(f"catalogue: added {', '.join(added)}" if added else "catalogue: nothing to add")
