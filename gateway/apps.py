from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        # Models are importable only once the app registry is ready, hence inside ready().
        from audit.chain import register_chain
        from gateway.catalogue import seed_catalogue_after_migrate
        from gateway.models import ModelCall
        from gateway.specs import MODEL_CALLS

        register_chain(ModelCall, MODEL_CALLS)
        post_migrate.connect(seed_catalogue_after_migrate, sender=apps.get_app_config("catalogue"))
