from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        # Models are importable only once the app registry is ready, hence inside ready().
        from audit.chain import register_chain
        from gateway.models import ModelCall
        from gateway.specs import MODEL_CALLS

        register_chain(ModelCall, MODEL_CALLS)
