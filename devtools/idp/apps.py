from django.apps import AppConfig


class IdpConfig(AppConfig):
    name = "devtools.idp"
    label = "idp"
    verbose_name = "Development identity provider"
    default_auto_field = "django.db.models.BigAutoField"
