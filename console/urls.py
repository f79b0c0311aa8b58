from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("usage/", views.usage, name="usage"),
    path("usage/live/", views.usage_live, name="usage_live"),
    path("model-calls/", views.model_calls, name="model_calls"),
    path("model-calls/<uuid:call_id>/", views.model_call_detail, name="model_call"),
    path("members/", views.members, name="members"),
    path("audit-events/", views.audit_events, name="audit"),
    path("coming/<slug:section>/", views.coming_soon, name="coming_soon"),
]
