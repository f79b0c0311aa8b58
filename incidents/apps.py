from django.apps import AppConfig

from convosuite.faults import check_fault_hooks_allowed


class IncidentsConfig(AppConfig):
    """Platform security and availability incidents (public schema): the record, its timeline, who was told."""

    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        check_fault_hooks_allowed()
        # Models are importable only once the app registry is ready, hence inside ready(). The gateway's screen
        # is told where markers come from and what a hit sets in motion; the gateway never imports this app.
        from gateway import screening
        from incidents.canaries import load_canaries, marker_for
        from incidents.leaks import report_cross_tenant_hit

        screening.register(load_canaries=load_canaries, on_hit=report_cross_tenant_hit, marker_for=marker_for)
