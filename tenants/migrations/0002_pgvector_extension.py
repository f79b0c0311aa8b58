from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector lives in the public schema; tenant schemas reach it through search_path (tenant, public)."""

    dependencies = [("tenants", "0001_initial")]

    operations = [VectorExtension()]
