from django.urls import path

from console import audit_views as views

app_name = "audit"

urlpatterns = [
    path("", views.audit_home, name="home"),
    path("exports/", views.start_export, name="start_export"),
    path("exports/<uuid:export_id>/", views.export_row, name="export_row"),
    path("exports/<uuid:export_id>/download/", views.download_export, name="download_export"),
    path("redaction/", views.set_redaction_policy, name="set_redaction"),
    path("verifier/verify_export.py", views.download_verifier, name="verifier"),
]
