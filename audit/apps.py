from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        # Models are importable only once the app registry is ready, hence inside ready().
        from audit.chain import register_chain
        from audit.models import AuditEvent
        from audit.specs import AUDIT_EVENTS

        register_chain(AuditEvent, AUDIT_EVENTS)
