"""The platform's Django admin never queries a tenant table in the public schema: "view on site" for a content
type of a tenant app is a clean 404 (it was a 500, `relation "audit_auditexport" does not exist`)."""

import uuid

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType

from accounts.models import Role
from tenants.models import Tenant
from tests.conftest import client_for, make_member

pytestmark = pytest.mark.django_db

OBJECT_IDS = ["1", "0", "-1", "99999999999999999999999", "not-a-number", str(uuid.uuid4()), "a/b/c"]


def test_view_on_site_never_fails_for_any_content_type(tenants: dict[str, Tenant]) -> None:
    staff = make_member(tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True)
    platform = client_for(tenants["public"], staff)
    content_types = list(ContentType.objects.all())
    tenant_only = [ct for ct in content_types if ct.app_label in {"chat", "gateway", "audit", "knowledge"}]
    assert tenant_only, "the public schema lists the content types of tenant apps too"
    statuses = {
        (f"{ct.app_label}.{ct.model}", object_id): platform.get(f"/admin/r/{ct.pk}/{object_id}/").status_code
        for ct in content_types
        for object_id in OBJECT_IDS
    }
    # No model of ours has a page of its own on the site, so every shortcut is a 404: none may be a 500.
    assert {key: status for key, status in statuses.items() if status != 404} == {}
    assert platform.get("/admin/r/999999/1/").status_code == 404


def test_view_on_site_needs_platform_staff(tenants: dict[str, Tenant], acme: Tenant) -> None:
    content_type = ContentType.objects.get(app_label="chat", model="conversation")
    anonymous = client_for(tenants["public"])
    assert anonymous.get(f"/admin/r/{content_type.pk}/1/").status_code == 302
    not_staff = client_for(tenants["public"], make_member(tenants["public"], roles=[Role.PLATFORM_ADMIN.value]))
    assert not_staff.get(f"/admin/r/{content_type.pk}/1/").status_code == 302
    assert "convosuite.apps.PlatformAdminConfig" in settings.INSTALLED_APPS
