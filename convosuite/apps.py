from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    """django.contrib.admin with the platform's admin site as `admin.site` (convosuite/admin_site.py)."""

    default_site = "convosuite.admin_site.PlatformAdminSite"
