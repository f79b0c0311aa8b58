"""URLs on a tenant's domain. Every view here goes through accounts.access (tested in test_access_rules)."""

from django.urls import include, path

from accounts import views as account_views

urlpatterns = [
    path("", account_views.tenant_root, name="root"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("evidence.urls")),
    path("logout/", account_views.logout, name="logout"),
    path("login-failed/", account_views.login_failed, name="login_failed"),
    path("chat/", include("chat.urls")),
    path("console/audit/", include("audit.urls")),
]

handler403 = "convosuite.errors.permission_denied"
handler404 = "convosuite.errors.page_not_found"
