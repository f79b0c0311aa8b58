"""Chain columns for ModelCall (audit/chain.py). Existing rows are chained in time order; the append-only
guard on the table is installed by audit/migrations/0002_hash_chains.py."""

from django.db import migrations, models


def chain_existing_rows(apps, schema_editor):
    import dataclasses

    from audit.chain import backfill_chain
    from gateway.specs import MODEL_CALLS

    # At this point of history a model call has no finished_at: rows were chained in created_at order
    # (gateway/0007 makes finished_at, the moment a call is sealed, the chain timestamp).
    spec = dataclasses.replace(MODEL_CALLS, timestamp_field="created_at")
    backfill_chain(apps.get_model("gateway", "ModelCall"), spec)


class Migration(migrations.Migration):

    dependencies = [
        ("gateway", "0001_initial"),
    ]

    operations = [
        migrations.AddField("modelcall", "seq", models.BigIntegerField(editable=False, null=True)),
        migrations.AddField("modelcall", "prev_hash", models.CharField(editable=False, max_length=64, default="")),
        migrations.AddField("modelcall", "record_hash", models.CharField(editable=False, max_length=64, default="")),
        migrations.AddField(
            "modelcall", "chain_salt", models.CharField(blank=True, editable=False, max_length=32, default="")
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
        migrations.AlterField("modelcall", "seq", models.BigIntegerField(editable=False, unique=True)),
        migrations.AlterField("modelcall", "prev_hash", models.CharField(editable=False, max_length=64)),
        migrations.AlterField("modelcall", "record_hash", models.CharField(editable=False, max_length=64)),
        migrations.AlterField("modelcall", "chain_salt", models.CharField(blank=True, editable=False, max_length=32)),
    ]
