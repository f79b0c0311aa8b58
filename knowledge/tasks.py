"""Celery tasks of the knowledge app. Each takes the tenant's schema name and ids, never objects."""

import logging
import uuid

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from knowledge.actions import do_ingest_document_version, do_mark_version_failed
from tenants.task_context import requires_tenant_context

logger = logging.getLogger(__name__)


# acks_late (settings) + an idempotent body: a worker killed mid-document gets the task redelivered, and
# the chunks already stored are kept (keyed by version, model and ordinal). Each run works for at most
# KNOWLEDGE_INGEST_SLICE_SECONDS and then re-queues itself, so the soft limit below is only reached by a
# parser stuck on a hostile file, which then fails that document alone.
@shared_task(
    name="knowledge.ingest_document_version",
    soft_time_limit=settings.KNOWLEDGE_INGEST_SLICE_SECONDS + 60,
    time_limit=settings.KNOWLEDGE_INGEST_SLICE_SECONDS + 90,
)
@requires_tenant_context
def ingest_document_version(tenant_schema: str, version_id: str) -> None:
    version_uuid = uuid.UUID(version_id)
    try:
        more = do_ingest_document_version(version_uuid)
    except SoftTimeLimitExceeded:
        logger.warning("knowledge ingestion of version %s hit the time limit", version_id)
        do_mark_version_failed(
            version_uuid, "Reading this file took too long; it may be malformed. Try a simpler export."
        )
        return
    if more:
        ingest_document_version.delay(tenant_schema, version_id)
