"""Remove conversations deleted longer ago than CHAT_DELETED_RETENTION_DAYS, in every tenant.
Run it daily (cron, systemd timer or Celery beat)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import get_public_schema_name, tenant_context

from chat.actions import do_purge_deleted_conversations
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Purge soft-deleted conversations older than the retention setting, in every tenant."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name"):
            with tenant_context(tenant):
                purged = do_purge_deleted_conversations()
            total += purged
            if purged:
                self.stdout.write(f"{tenant.schema_name}: purged {purged} conversation(s)")
        self.stdout.write(
            f"purged {total} conversation(s) deleted more than {settings.CHAT_DELETED_RETENTION_DAYS} days ago"
        )
