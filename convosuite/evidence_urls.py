from django.urls import path

from convosuite import evidence_views as views

urlpatterns = [
    path(".well-known/convosuite-audit-key", views.audit_public_key, name="audit_public_key"),
    path(".well-known/convosuite-audit-keys.json", views.audit_public_keys, name="audit_public_keys"),
]
