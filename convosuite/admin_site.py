"""The platform's Django admin site: Django's own, except for the "view on site" shortcut.

Django's shortcut (`/admin/r/<content type id>/<object id>/`) loads any content type's object. On the platform
domain the connection is in the public schema, where the tables of tenant apps do not exist, so a content type
of a tenant app (chat, gateway, audit, ...) made the query fail with a 500. Here those content types are
answered with 404 before anything is queried; platform models keep Django's behaviour.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django_tenants.routers import TenantSyncRouter


def lives_in_public_schema(content_type: ContentType) -> bool:
    """True for models of shared apps (their tables are in the public schema), as django-tenants decides it."""
    return content_type.model_class() is not None and TenantSyncRouter().app_in_list(
        content_type.app_label, settings.SHARED_APPS
    )


def view_platform_record_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    content_type = ContentType.objects.filter(pk=content_type_id).first()
    if content_type is None or not lives_in_public_schema(content_type):
        raise Http404("Only platform records can be viewed on the site from here.")
    return shortcut(request, content_type_id, object_id)  # type: ignore[no-any-return]


class PlatformAdminSite(admin.AdminSite):
    def get_urls(self) -> list[URLResolver | URLPattern]:
        own = path(
            "r/<int:content_type_id>/<path:object_id>/",
            self.admin_view(view_platform_record_on_site),
            name="view_on_site",
        )
        return [own if getattr(url, "name", None) == "view_on_site" else url for url in super().get_urls()]
