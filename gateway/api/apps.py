from django.apps import AppConfig


class GatewayApiConfig(AppConfig):
    name = "gateway.api"
    label = "gateway_api"
    verbose_name = "Tenant API"
