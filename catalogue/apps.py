from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    """The platform's model catalogue and prices: tables in the public schema only. The gateway owns what
    is done with them (gateway/catalogue.py: changes, seeding; gateway/admin.py: the admin pages)."""

    name = "catalogue"
    verbose_name = "Model catalogue"
