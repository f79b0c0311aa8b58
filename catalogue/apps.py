from typing import Any

from django.apps import AppConfig
from django.db import connection
from django.db.models.signals import post_migrate


def _seed_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    """Every migrated database has at least the seed catalogue (missing entries only, never overwriting), so
    a new tenant's default policy always finds its default model, whatever order a deploy runs commands in."""
    if getattr(connection, "schema_name", "public") != "public":
        return  # django-tenants migrates each tenant schema too; the catalogue lives in public only
    from catalogue.actions import do_seed_catalogue

    do_seed_catalogue(acting_label="manage.py migrate")


class CatalogueConfig(AppConfig):
    name = "catalogue"
    verbose_name = "Model catalogue"

    def ready(self) -> None:
        post_migrate.connect(_seed_after_migrate, sender=self)
