from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        from audit.chain import register_chain
        from audit.models import AuditEvent
        from audit.specs import AUDIT_EVENTS, MODEL_CALLS
        from gateway.models import ModelCall

        register_chain(ModelCall, MODEL_CALLS)
        register_chain(AuditEvent, AUDIT_EVENTS)
