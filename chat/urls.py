from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("new/", views.new_conversation, name="new"),
    path("search/", views.search, name="search"),
    path("<uuid:conversation_id>/", views.conversation_detail, name="conversation"),
    path("<uuid:conversation_id>/rename/", views.rename_conversation, name="rename"),
    path("<uuid:conversation_id>/delete/", views.delete_conversation, name="delete"),
    path("<uuid:conversation_id>/model/", views.set_model, name="model"),
    path("<uuid:conversation_id>/export.<str:export_format>", views.export_conversation, name="export"),
    path("<uuid:conversation_id>/messages/", views.send_message, name="send"),
    path("<uuid:conversation_id>/messages/<uuid:message_id>/", views.message_fragment, name="message"),
    path(
        "<uuid:conversation_id>/messages/<uuid:message_id>/stream/",
        views.message_stream,
        name="message_stream",
    ),
    path("<uuid:conversation_id>/messages/<uuid:message_id>/stop/", views.stop_reply, name="stop"),
    path(
        "<uuid:conversation_id>/messages/<uuid:message_id>/regenerate/",
        views.regenerate_reply,
        name="regenerate",
    ),
    path("<uuid:conversation_id>/messages/<uuid:message_id>/edit/", views.edit_message, name="edit"),
]
