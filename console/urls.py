from django.urls import path

from console import api_key_views, control_views, views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("usage/", views.usage, name="usage"),
    path("usage/live/", views.usage_live, name="usage_live"),
    path("model-calls/", views.model_calls, name="model_calls"),
    path("model-calls/<uuid:call_id>/", views.model_call_detail, name="model_call"),
    path("members/", views.members, name="members"),
    path("audit-events/", views.audit_events, name="audit"),
    path("budgets/", control_views.budgets, name="budgets"),
    path("budgets/save/", control_views.budgets_save, name="budgets_save"),
    path("kill-switch/", control_views.kill_switch, name="kill_switch"),
    path("kill-switch/set/", control_views.kill_switch_set, name="kill_switch_set"),
    path("models/", control_views.models, name="models"),
    path("models/save/", control_views.models_save, name="models_save"),
    path("models/fallbacks/", control_views.fallbacks_save, name="fallbacks_save"),
    path("api-keys/", api_key_views.api_keys, name="api_keys"),
    path("api-keys/new/", api_key_views.api_key_create, name="api_key_create"),
    path("api-keys/<uuid:key_id>/created/", api_key_views.api_key_created, name="api_key_created"),
    path("api-keys/<uuid:key_id>/revoke/", api_key_views.api_key_revoke, name="api_key_revoke"),
]
