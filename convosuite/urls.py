"""URLs on a tenant's domain. Every view here goes through accounts.access or, for the API under /v1/,
gateway.api.auth.api_view (tested in test_access_rules)."""

from django.urls import include, path

from accounts import views as account_views
from convosuite.site_files import favicon
from incidents import urls as incident_urls

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("", account_views.tenant_root, name="root"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("convosuite.evidence_urls")),
    path("logout/", account_views.logout, name="logout"),
    path("login-failed/", account_views.login_failed, name="login_failed"),
    path("chat/", include("chat.urls")),
    # Before console/: the console's placeholder route would otherwise claim these sections.
    path("console/prompts/", include("prompts.urls")),
    path("console/audit/", include("console.audit_urls")),
    path("console/incidents/", include((incident_urls.console_urlpatterns, "incidents"))),
    path("", include("knowledge.urls")),
    path("console/", include("console.urls")),
    path("v1/", include("gateway.api.urls")),
]

handler403 = "convosuite.errors.permission_denied"
handler404 = "convosuite.errors.page_not_found"
