from django.urls import path

from knowledge import views

app_name = "knowledge"

urlpatterns = [
    path("console/knowledge/", views.knowledge_home, name="home"),
    path("console/knowledge/new/", views.create_knowledge_base, name="create"),
    path("console/knowledge/<uuid:knowledge_base_id>/", views.knowledge_base_detail, name="detail"),
    path("console/knowledge/<uuid:knowledge_base_id>/settings/", views.update_settings, name="settings"),
    path("console/knowledge/<uuid:knowledge_base_id>/delete/", views.delete_knowledge_base, name="delete"),
    path("console/knowledge/<uuid:knowledge_base_id>/documents/", views.document_list, name="documents"),
    path(
        "console/knowledge/<uuid:knowledge_base_id>/documents/upload/", views.upload_documents, name="upload"
    ),
    path(
        "console/knowledge/<uuid:knowledge_base_id>/documents/<uuid:document_id>/versions/",
        views.upload_new_version,
        name="new_version",
    ),
    path(
        "console/knowledge/<uuid:knowledge_base_id>/documents/<uuid:document_id>/delete/",
        views.delete_document,
        name="delete_document",
    ),
    path("console/knowledge/<uuid:knowledge_base_id>/query/", views.test_query, name="query"),
    path("knowledge/passages/<uuid:chunk_id>/", views.passage_detail, name="passage"),
]
