"""/v1/ on a tenant's domain: the OpenAI-compatible API. Every view is wrapped by gateway.api.auth.api_view."""

from django.urls import path, re_path

from gateway.api import views

app_name = "api"

urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat_completions"),
    path("embeddings", views.embeddings, name="embeddings"),
    path("models", views.list_models, name="models"),
    path("models/<str:model>", views.retrieve_model, name="model"),
    re_path(r"^(?P<path>.*)$", views.not_found, name="not_found"),
]
