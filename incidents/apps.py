from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    """Platform security and availability incidents (public schema): the record, its timeline, who was told."""

    name = "incidents"
    verbose_name = "Incidents"
