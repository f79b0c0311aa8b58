"""Hash chains: chain columns on AuditEvent (existing rows chained in time order), signed checkpoints,
exports, the tenant's redaction setting, and the append-only guard on every chain table.

The guard is a trigger (this project's web and worker processes share one database role, so a REVOKE
would not separate them): UPDATE, DELETE and TRUNCATE are refused, except DELETE inside a transaction
that set `convosuite.chain_retention` = 'on' (only `manage.py prune_audit` does, via
audit.actions.do_prune_chain, which leaves a signed retention checkpoint).
"""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models

GUARDED_TABLES = ["audit_auditevent", "gateway_modelcall", "audit_chaincheckpoint"]

GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION convosuite_reject_chain_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('convosuite.chain_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only evidence (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Retention deletes go through manage.py prune_audit.';
END;
$$ LANGUAGE plpgsql;
"""


def guard_sql(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION convosuite_reject_chain_change();\n"
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION convosuite_reject_chain_change();"
    )


def unguard_sql(table: str) -> str:
    return f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}; DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};"


def chain_existing_rows(apps, schema_editor):
    from audit.chain import backfill_chain
    from audit.specs import AUDIT_EVENTS

    backfill_chain(apps.get_model("audit", "AuditEvent"), AUDIT_EVENTS)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
        ("gateway", "0002_modelcall_hash_chain"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["-seq"]}),
        migrations.AddField("auditevent", "seq", models.BigIntegerField(editable=False, null=True)),
        migrations.AddField("auditevent", "prev_hash", models.CharField(editable=False, max_length=64, default="")),
        migrations.AddField("auditevent", "record_hash", models.CharField(editable=False, max_length=64, default="")),
        migrations.AddField(
            "auditevent", "chain_salt", models.CharField(blank=True, editable=False, max_length=32, default="")
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
        migrations.AlterField("auditevent", "seq", models.BigIntegerField(editable=False, unique=True)),
        migrations.AlterField("auditevent", "prev_hash", models.CharField(editable=False, max_length=64)),
        migrations.AlterField("auditevent", "record_hash", models.CharField(editable=False, max_length=64)),
        migrations.AlterField("auditevent", "chain_salt", models.CharField(blank=True, editable=False, max_length=32)),
        migrations.CreateModel(
            name="AuditSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "redaction_policy",
                    models.CharField(
                        choices=[("full", "Full text"), ("hashed", "SHA-256 of the text"), ("removed", "Removed")],
                        default="full",
                        max_length=16,
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="ChainCheckpoint",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("chain", models.CharField(max_length=32)),
                ("seq", models.BigIntegerField()),
                ("head_hash", models.CharField(max_length=64)),
                ("head_timestamp", models.DateTimeField(null=True)),
                (
                    "reason",
                    models.CharField(
                        choices=[("periodic", "Periodic"), ("retention", "Retention (rows up to seq pruned)")],
                        default="periodic",
                        max_length=16,
                    ),
                ),
                ("signed_at", models.DateTimeField()),
                ("statement", models.TextField()),
                ("signature", models.CharField(max_length=128)),
                ("key_id", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["-signed_at"],
                "indexes": [models.Index(fields=["chain", "-seq"], name="audit_chain_chain_0dc5ce_idx")],
            },
        ),
        migrations.CreateModel(
            name="AuditExport",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("requested_by_label", models.CharField(blank=True, max_length=255)),
                ("window_start", models.DateTimeField()),
                ("window_end", models.DateTimeField()),
                (
                    "redaction_policy",
                    models.CharField(
                        choices=[("full", "Full text"), ("hashed", "SHA-256 of the text"), ("removed", "Removed")],
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Queued"),
                            ("running", "Running"),
                            ("ready", "Ready"),
                            ("failed", "Failed"),
                            ("expired", "Expired"),
                        ],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("records_total", models.BigIntegerField(default=0)),
                ("records_done", models.BigIntegerField(default=0)),
                ("file_name", models.CharField(blank=True, max_length=255)),
                ("file_size", models.BigIntegerField(default=0)),
                ("error", models.TextField(blank=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.RunSQL(GUARD_FUNCTION, "DROP FUNCTION IF EXISTS convosuite_reject_chain_change() CASCADE;"),
        *[migrations.RunSQL(guard_sql(table), unguard_sql(table)) for table in GUARDED_TABLES],
    ]
