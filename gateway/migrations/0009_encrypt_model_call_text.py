"""Model-call text (messages, response, tool calls, error) is encrypted with the tenant's data key.

The columns become text holding `cs1:` tokens (jsonb converts with USING ::text); existing rows are
encrypted in place. Sealed rows are evidence and the guard trigger rejects their UPDATE, so the guard
learns one exception: inside a transaction that set `convosuite.reencrypt` (this migration, key rotation:
keys.migration_helpers.allow_reencryption_of_sealed_rows), a sealed row may change these four columns and
nothing else. The chain hashes the plaintext (salted commitments of the decrypted values, docs/audit.md),
which re-encryption keeps, so the chain still verifies; a changed plaintext would not.
"""

import keys.fields
from django.db import migrations

ENCRYPTED_COLUMNS = ("messages", "response", "tool_calls", "error")

GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION convosuite_guard_model_call() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NULL THEN
            RETURN NEW;
        END IF;{reencryption}
    ELSIF TG_OP = 'DELETE' THEN
        IF current_setting('convosuite.chain_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'rows of %.% are append-only evidence (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'A model call can be updated only until it is sealed{hint}; retention deletes go through manage.py prune_audit.';
END;
$$ LANGUAGE plpgsql;
"""

REENCRYPTION_CLAUSE = """
        IF current_setting('convosuite.reencrypt', true) = 'on'
           AND to_jsonb(NEW) - ARRAY['messages', 'response', 'tool_calls', 'error']
             = to_jsonb(OLD) - ARRAY['messages', 'response', 'tool_calls', 'error'] THEN
            RETURN NEW;
        END IF;"""

# Forwards: the guard with the re-encryption exception; backwards: the guard of 0007, as it was.
GUARD_WITH_REENCRYPTION = GUARD_FUNCTION.format(reencryption=REENCRYPTION_CLAUSE, hint=" (then only re-encrypted)")
GUARD_WITHOUT_REENCRYPTION = GUARD_FUNCTION.format(reencryption="", hint="")


def encrypt_existing(apps, schema_editor):
    from keys.migration_helpers import encrypt_plaintext_column

    for column in ENCRYPTED_COLUMNS:
        encrypt_plaintext_column(schema_editor, "gateway_modelcall", column)


def decrypt_existing(apps, schema_editor):
    from keys.migration_helpers import decrypt_column

    for column in ENCRYPTED_COLUMNS:
        decrypt_column(schema_editor, "gateway_modelcall", column)


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0008_merge_alerts_and_seal'),
        ('keys', '0001_tenant_keys'),
    ]

    operations = [
        migrations.AlterField(
            model_name='modelcall',
            name='error',
            field=keys.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name='modelcall',
            name='messages',
            field=keys.fields.EncryptedJSONField(default=list),
        ),
        migrations.AlterField(
            model_name='modelcall',
            name='response',
            field=keys.fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name='modelcall',
            name='tool_calls',
            field=keys.fields.EncryptedJSONField(blank=True, default=list),
        ),
        migrations.RunSQL(GUARD_WITH_REENCRYPTION, GUARD_WITHOUT_REENCRYPTION),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
