"""Model calls are sealed when final (audit.chain.seal_in_chain): a 'started' row is claimed with NULL chain
columns, updated to its final state and chained in that transaction.

The guard on gateway_modelcall becomes its own function: UPDATE passes only while the row is unsealed
(OLD.seq IS NULL); a sealed row rejects UPDATE, every row rejects DELETE except in a retention transaction
(`convosuite.chain_retention` = 'on', manage.py prune_audit) and TRUNCATE is refused. The other chain tables
(audit_auditevent, audit_chaincheckpoint) keep the fully append-only guard of audit/0002_hash_chains.
"""

from django.conf import settings
from django.db import migrations, models

SEAL_GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION convosuite_guard_model_call() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NULL THEN
            RETURN NEW;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF current_setting('convosuite.chain_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only evidence (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'A model call can be updated only until it is sealed; retention deletes go through manage.py prune_audit.';
END;
$$ LANGUAGE plpgsql;
"""

SEAL_GUARD = """
DROP TRIGGER IF EXISTS gateway_modelcall_append_only ON gateway_modelcall;
DROP TRIGGER IF EXISTS gateway_modelcall_no_truncate ON gateway_modelcall;
CREATE TRIGGER gateway_modelcall_append_only BEFORE UPDATE OR DELETE ON gateway_modelcall
    FOR EACH ROW EXECUTE FUNCTION convosuite_guard_model_call();
CREATE TRIGGER gateway_modelcall_no_truncate BEFORE TRUNCATE ON gateway_modelcall
    FOR EACH STATEMENT EXECUTE FUNCTION convosuite_guard_model_call();
"""

APPEND_ONLY_GUARD = """
DROP TRIGGER IF EXISTS gateway_modelcall_append_only ON gateway_modelcall;
DROP TRIGGER IF EXISTS gateway_modelcall_no_truncate ON gateway_modelcall;
CREATE TRIGGER gateway_modelcall_append_only BEFORE UPDATE OR DELETE ON gateway_modelcall
    FOR EACH ROW EXECUTE FUNCTION convosuite_reject_chain_change();
CREATE TRIGGER gateway_modelcall_no_truncate BEFORE TRUNCATE ON gateway_modelcall
    FOR EACH STATEMENT EXECUTE FUNCTION convosuite_reject_chain_change();
DROP FUNCTION IF EXISTS convosuite_guard_model_call();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0006_merge_hash_chain'),
        ('audit', '0002_hash_chains'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='modelcall',
            name='chain_salt',
            field=models.CharField(blank=True, editable=False, max_length=32, null=True),
        ),
        migrations.AlterField(
            model_name='modelcall',
            name='prev_hash',
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name='modelcall',
            name='record_hash',
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name='modelcall',
            name='seq',
            field=models.BigIntegerField(editable=False, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name='modelcall',
            index=models.Index(fields=['finished_at'], name='modelcall_finished_idx'),
        ),
        migrations.RunSQL(SEAL_GUARD_FUNCTION, migrations.RunSQL.noop),
        migrations.RunSQL(SEAL_GUARD, APPEND_ONLY_GUARD),
    ]
