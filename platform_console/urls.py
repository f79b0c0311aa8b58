from django.urls import path

from platform_console import views

app_name = "platform"

urlpatterns = [
    path("usage/", views.usage, name="usage"),
    path("break-glass/", views.break_glass, name="break_glass"),
    path("break-glass/<int:grant_id>/close/", views.close_grant, name="close_grant"),
    path("break-glass/<int:grant_id>/conversations/", views.grant_conversations, name="grant_conversations"),
    path(
        "break-glass/<int:grant_id>/conversations/<uuid:conversation_id>/",
        views.grant_conversation,
        name="grant_conversation",
    ),
    path("break-glass/<int:grant_id>/model-calls/", views.grant_model_calls, name="grant_model_calls"),
    path(
        "break-glass/<int:grant_id>/model-calls/<uuid:call_id>/",
        views.grant_model_call,
        name="grant_model_call",
    ),
    path("break-glass/<int:grant_id>/prompts/", views.grant_prompts, name="grant_prompts"),
    path(
        "break-glass/<int:grant_id>/prompts/<uuid:template_id>/",
        views.grant_prompt,
        name="grant_prompt",
    ),
    path("break-glass/<int:grant_id>/knowledge/", views.grant_knowledge_bases, name="grant_knowledge_bases"),
    path(
        "break-glass/<int:grant_id>/knowledge/<uuid:knowledge_base_id>/",
        views.grant_knowledge_base,
        name="grant_knowledge_base",
    ),
    path("break-glass/<int:grant_id>/exports/", views.grant_exports, name="grant_exports"),
    path("break-glass/<int:grant_id>/exports/start/", views.grant_start_export, name="grant_start_export"),
    path(
        "break-glass/<int:grant_id>/exports/<uuid:export_id>/",
        views.grant_export_row,
        name="grant_export_row",
    ),
    path(
        "break-glass/<int:grant_id>/exports/<uuid:export_id>/download/",
        views.grant_download_export,
        name="grant_download_export",
    ),
]
