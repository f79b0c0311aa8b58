"""Celery app. Tasks carry the sender's schema in a header (tenant-schemas-celery) and the worker runs
each task inside that tenant's schema; tenants/task_context.py makes a tenant task refuse to run outside its tenant."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.local")

app = CeleryApp("convosuite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
