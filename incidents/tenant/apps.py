from django.apps import AppConfig


class IncidentsTenantConfig(AppConfig):
    """What of the incident tooling a tenant owns, in its own schema: its anomaly thresholds and outage e-mail
    choice, and the notices its admins received."""

    name = "incidents.tenant"
    label = "incidents_tenant"
    verbose_name = "Incident notices and thresholds"
