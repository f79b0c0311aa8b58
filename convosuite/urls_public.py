"""URLs on the platform domain (public schema): landing page and Django admin for platform staff."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import include, path

from accounts import views as account_views
from accounts.access import public_view
from convosuite.site_files import favicon
from incidents import urls as incident_urls

# Platform staff sign in through the identity provider too; the admin's own password form is not offered.
admin.site.login = login_required(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = admin.site.site_title = "ConvoSuite platform"


@public_view
def landing(request):  # type: ignore[no-untyped-def]
    return render(request, "public/landing.html")


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("", landing, name="landing"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("", include("convosuite.evidence_urls")),
    path("logout/", account_views.logout, name="logout"),
    path("login-failed/", account_views.login_failed, name="login_failed"),
    path("admin/", admin.site.urls),
    path("platform/", include("platform_console.urls")),
    path("platform/", include((incident_urls.platform_urlpatterns, "incidents"))),
    # The public status page: no sign-in, no tenant data.
    path("status/", include((incident_urls.public_urlpatterns, "status"))),
]

handler403 = "convosuite.errors.permission_denied"
handler404 = "convosuite.errors.page_not_found"
