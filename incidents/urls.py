"""Incident URLs: the platform's pages (mounted at /platform/incidents/ and /platform/status/), the public status
page (/status/ on the platform domain) and the tenant console's pages (/console/incidents/)."""

from django.urls import path

from incidents import console_views, public_views, views

app_name = "incidents"

platform_urlpatterns = [
    path("incidents/", views.incident_list, name="list"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="detail"),
    path("incidents/<int:incident_id>/status/", views.incident_status, name="status"),
    path("incidents/<int:incident_id>/note/", views.incident_note, name="note"),
    path("incidents/<int:incident_id>/review/", views.incident_review, name="review"),
    path("incidents/<int:incident_id>/notice/", views.incident_notice, name="notice"),
    path("incidents/<int:incident_id>/remediate/", views.incident_remediate, name="remediate"),
    path("incidents/<int:incident_id>/post-mortem/", views.incident_postmortem, name="postmortem"),
    path("status/", views.status_admin, name="status_admin"),
    path("status/update/", views.status_update, name="status_update"),
]

public_urlpatterns = [
    path("", public_views.status_page, name="status_page"),
    path("status.json", public_views.status_json, name="status_json"),
]

console_urlpatterns = [
    path("", console_views.incidents, name="console"),
    path("<int:incident_id>/", console_views.incident, name="console_detail"),
    path("notices/<int:notice_id>/acknowledge/", console_views.acknowledge_notice, name="acknowledge"),
    path("thresholds/", console_views.save_watch_settings, name="thresholds"),
    path("revoke-credentials/", console_views.revoke_credentials, name="revoke"),
]
