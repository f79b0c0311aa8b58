from django.apps import AppConfig

from convosuite.faults import check_fault_hooks_allowed


class IncidentsConfig(AppConfig):
    """Platform security and availability incidents (public schema): the record, its timeline, who was told."""

    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        check_fault_hooks_allowed()
        # Models are importable only once the app registry is ready, hence inside ready(). The gateway is told
        # where canary markers come from, what a hit sets in motion, who watches calls and breakers; it never
        # imports this app (layers).
        from gateway import hooks, screening
        from incidents.anomalies import observe_call
        from incidents.canaries import load_canaries, marker_for
        from incidents.leaks import report_cross_tenant_hit
        from incidents.status import breaker_changed

        screening.register(load_canaries=load_canaries, on_hit=report_cross_tenant_hit, marker_for=marker_for)
        hooks.on_call(observe_call)
        hooks.on_breaker_change(breaker_changed)
