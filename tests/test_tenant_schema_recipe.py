"""A tenant schema built by replaying the recorded recipe is the schema migrate_schemas builds: the same
columns (vector columns included), indexes (HNSW included), constraints, triggers (append-only guards),
functions, sequences and rows in django_migrations, content types and permissions; and migrate_schemas keeps
working on it."""

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import schema_context, tenant_context

from audit.actions import do_record_audit_event
from audit.models import AuditEvent
from lifecycle.actions import do_create_tenant
from tenants import schema_recipe
from tenants.models import Tenant, TenantSchemaRecipe
from tenants.schema_recipe import (
    RecordingRefused,
    SchemaBuild,
    do_build_tenant_schema,
    migrate_and_record,
    migrations_fingerprint,
    replay_recipe,
)


def _slug(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made() -> Iterator[list[Tenant]]:
    """Tenants a test creates; their schemas and rows are removed afterwards."""
    tenants: list[Tenant] = []
    yield tenants
    connection.set_schema_to_public()  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        for tenant in tenants:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
    Tenant.objects.filter(pk__in=[tenant.pk for tenant in tenants]).delete()


def _new_tenant(made: list[Tenant], prefix: str) -> Tenant:
    tenant = Tenant.objects.create(schema_name=_slug(prefix), name=prefix)
    made.append(tenant)
    return tenant


CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, udt_name, character_maximum_length,
               numeric_precision, numeric_scale, datetime_precision, is_nullable, column_default, is_identity,
               identity_generation, is_generated
        FROM information_schema.columns WHERE table_schema = %s""",
    # information_schema has no type modifier for extension types: vector(384) only shows here.
    "column types": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attisdropped
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND a.attnum > 0""",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
    "constraints": """
        SELECT cl.relname, con.conname, con.contype, pg_get_constraintdef(con.oid), con.condeferrable,
               con.condeferred
        FROM pg_constraint con JOIN pg_class cl ON cl.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = %s""",
    "triggers (information_schema)": """
        SELECT event_object_table, trigger_name, event_manipulation, action_timing, action_orientation,
               action_statement
        FROM information_schema.triggers WHERE trigger_schema = %s""",
    "triggers": """
        SELECT cl.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class cl ON cl.oid = t.tgrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = %s AND NOT t.tgisinternal""",
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by, max_value, last_value
        FROM pg_sequences WHERE schemaname = %s""",
}
ROW_QUERIES = {
    "django_migrations": "SELECT id, app, name FROM django_migrations",
    "content types": "SELECT id, app_label, model FROM django_content_type",
    "permissions": "SELECT id, name, content_type_id, codename FROM auth_permission",
}


def catalog(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything that defines the schema, with its own name taken out so two schemas can be compared."""
    own_name = re.compile(rf'"?\b{re.escape(schema)}\b"?\.')

    def normalized(value: Any) -> Any:
        return own_name.sub("<schema>.", value) if isinstance(value, str) else value

    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        for name, query in CATALOG_QUERIES.items():
            cursor.execute(query, [schema])
            snapshot[name] = sorted(tuple(normalized(value) for value in row) for row in cursor.fetchall())
    with schema_context(schema), connection.cursor() as cursor:
        for name, query in ROW_QUERIES.items():
            cursor.execute(query)
            snapshot[name] = sorted(cursor.fetchall())
    return snapshot


@pytest.mark.usefixtures("committed_db")
def test_replayed_schema_is_exactly_the_migrated_schema(made: list[Tenant]) -> None:
    migrated = _new_tenant(made, "mig")
    recipe = migrate_and_record(migrated)  # migrate_schemas, exactly as before, while recording
    replayed = _new_tenant(made, "rep")
    replay_recipe(replayed, recipe)

    expected, actual = catalog(migrated.schema_name), catalog(replayed.schema_name)
    for part in expected:
        assert actual[part] == expected[part], part

    # The parts this must not lose, present in both (so the comparison above compared something).
    indexes = {row[1] for row in actual["indexes"]}
    assert {f"knowledge_chunk_hnsw_{dim}" for dim in (384, 768, 1024, 1536)} <= indexes
    hnsw = next(row[2] for row in actual["indexes"] if row[1] == "knowledge_chunk_hnsw_384")
    assert "USING hnsw" in hnsw and "vector(384)" in hnsw
    assert ("knowledge_chunk", "embedding") in {(row[0], row[2]) for row in actual["column types"]}
    triggers = {(row[0], row[1]) for row in actual["triggers"]}
    assert {
        ("gateway_modelcall", "gateway_modelcall_no_truncate"),
        ("audit_auditevent", "audit_auditevent_append_only"),
        ("audit_chaincheckpoint", "audit_chaincheckpoint_append_only"),
    } <= triggers
    assert any(
        row[0] == "gateway_modelcall" and "convosuite_guard_model_call" in row[2]
        for row in actual["triggers"]
    )
    assert len(actual["django_migrations"]) > 40 and len(actual["permissions"]) > 50


@pytest.mark.usefixtures("committed_db")
def test_migrate_schemas_finds_nothing_to_do_on_a_replayed_tenant_and_keeps_working(
    made: list[Tenant],
) -> None:
    recorded = _new_tenant(made, "mig")
    recipe = migrate_and_record(recorded)
    replayed = _new_tenant(made, "rep")
    replay_recipe(replayed, recipe)
    before = catalog(replayed.schema_name)

    with schema_context(replayed.schema_name):
        executor = MigrationExecutor(connection)
        assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    call_command("migrate_schemas", schema_name=replayed.schema_name, interactive=False, verbosity=0)
    assert catalog(replayed.schema_name) == before


@pytest.mark.usefixtures("committed_db")
def test_a_replayed_tenant_works_and_keeps_its_evidence_append_only(made: list[Tenant]) -> None:
    recipe = migrate_and_record(_new_tenant(made, "mig"))
    replayed = _new_tenant(made, "rep")
    replay_recipe(replayed, recipe)
    with tenant_context(replayed):
        event = do_record_audit_event(kind="tenant.frozen", actor_label="test", details={"reason": "drill"})
        assert AuditEvent.objects.get(pk=event.pk).details == {"reason": "drill"}
        with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET actor_label = 'someone else'")


@pytest.mark.usefixtures("committed_db")
def test_first_tenant_of_a_migration_set_is_migrated_and_recorded_later_ones_replay(
    made: list[Tenant],
) -> None:
    fingerprint = uuid.uuid4().hex  # a set of migrations no tenant was built with yet
    schema_recipe._recipes.clear()
    with (
        mock.patch.object(schema_recipe, "migrations_fingerprint", return_value=fingerprint),
        mock.patch.object(schema_recipe, "replay_recipe", wraps=replay_recipe) as replays,
    ):
        first = do_create_tenant(
            slug=_slug("first"), name="First", domains=[f"{uuid.uuid4().hex[:8]}.localhost"]
        )
        made.append(first)
        assert replays.call_count == 0
        stored = TenantSchemaRecipe.objects.get(fingerprint=fingerprint)
        assert stored.recorded_from == first.schema_name

        schema_recipe._recipes.clear()  # as in a new process: the recipe comes from the database
        second = do_create_tenant(
            slug=_slug("second"), name="Second", domains=[f"{uuid.uuid4().hex[:8]}.localhost"]
        )
        made.append(second)
        assert replays.call_count == 1 and replays.call_args.args[0] == second
    assert catalog(second.schema_name) == catalog(first.schema_name)
    TenantSchemaRecipe.objects.filter(fingerprint=fingerprint).delete()


@pytest.mark.usefixtures("committed_db")
def test_a_replay_that_fails_falls_back_to_migrating_and_records_again(made: list[Tenant]) -> None:
    fingerprint = uuid.uuid4().hex
    TenantSchemaRecipe.objects.create(fingerprint=fingerprint, sql="CREATE TABLE broken (", recorded_from="x")
    schema_recipe._recipes.clear()
    tenant = _new_tenant(made, "fall")
    with mock.patch.object(schema_recipe, "migrations_fingerprint", return_value=fingerprint):
        assert do_build_tenant_schema(tenant) == SchemaBuild.MIGRATED
    assert "broken" not in TenantSchemaRecipe.objects.get(fingerprint=fingerprint).sql
    assert len(catalog(tenant.schema_name)["django_migrations"]) > 40
    TenantSchemaRecipe.objects.filter(fingerprint=fingerprint).delete()


@pytest.mark.usefixtures("committed_db")
def test_replay_can_be_switched_off(made: list[Tenant], settings: Any) -> None:
    settings.TENANT_SCHEMA_REPLAY = False
    tenant = _new_tenant(made, "off")
    with mock.patch.object(schema_recipe, "replay_recipe") as replays:
        assert do_build_tenant_schema(tenant) == SchemaBuild.MIGRATED_UNRECORDED
    assert replays.call_count == 0 and len(catalog(tenant.schema_name)["django_migrations"]) > 40


@pytest.mark.usefixtures("committed_db")
def test_fingerprint_changes_with_any_migration_file(tmp_path: Path) -> None:
    before = migrations_fingerprint()
    extra = tmp_path / "0099_new.py"
    extra.write_text("# a new migration\n")
    real_files = schema_recipe._migration_files
    migrations_fingerprint.cache_clear()
    try:
        with mock.patch.object(
            schema_recipe,
            "_migration_files",
            lambda label: real_files(label) + ([extra] if label == "gateway" else []),
        ):
            assert migrations_fingerprint() != before
            extra.write_text("# the same migration, edited\n")
            changed = migrations_fingerprint.__wrapped__()
            assert changed not in (before, migrations_fingerprint())
    finally:
        migrations_fingerprint.cache_clear()
    assert migrations_fingerprint() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sql", "params", "refusal"),
    [
        ('INSERT INTO "keys_tenantkey" ("tenant_id") VALUES (%s)', [1], "writes keys_tenantkey"),
        ('UPDATE "tenants_tenant" SET "name" = %s', ["x"], "writes tenants_tenant"),
        ('INSERT INTO "audit_auditsettings" ("salt") VALUES (%s)', ["9f2c"], "writes audit_auditsettings"),
        ('INSERT INTO "django_content_type" ("model") VALUES (%s)', ["made in {schema}"], "names the schema"),
        ("WITH moved AS (DELETE FROM x RETURNING *) INSERT INTO y SELECT * FROM moved", None, "not a schema"),
        ("DO $$ BEGIN PERFORM 1; END $$", None, "not a schema change"),
        ('CREATE VIEW v AS SELECT 1 FROM "{schema}".audit_auditevent', None, "names the schema"),
        ("SELECT setval('audit_auditevent_id_seq', 100)", None, "side effects"),
        ('ROLLBACK TO SAVEPOINT "s1"', None, "rolled back"),
    ],
)
def test_recording_refuses_what_cannot_be_replayed_for_another_tenant(
    acme: Tenant, sql: str, params: Any, refusal: str
) -> None:
    schema = acme.schema_name
    params = [
        value.format(schema=schema) if isinstance(value, str) else value for value in params or []
    ] or None
    executed = [("CREATE TABLE t (id int)", None, False), (sql.format(schema=schema), params, False)]
    with pytest.raises(RecordingRefused, match=refusal):
        schema_recipe._recipe_from(executed, schema_name=schema)


@pytest.mark.django_db
def test_recording_keeps_schema_changes_and_leaves_out_reads_and_search_paths(acme: Tenant) -> None:
    executed = [
        ('SET search_path = "acme", "public"', None, False),
        ("SELECT c.relname FROM pg_class c WHERE c.relname = %s", ["x"], False),
        ('CREATE TABLE "t" ("id" int)', None, False),
        (
            'INSERT INTO "django_content_type" ("app_label", "model") VALUES (%s, %s)',
            ["chat", "message"],
            False,
        ),
        (
            'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (%s, %s, %s) RETURNING "id"',
            ["chat", "0001_initial", "2026-01-01T00:00:00Z"],
            False,
        ),
    ]
    recipe = schema_recipe._recipe_from(executed, schema_name=acme.schema_name)
    assert recipe == (
        'CREATE TABLE "t" ("id" int)\n;\n'
        'INSERT INTO "django_content_type" ("app_label", "model") VALUES (\'chat\', \'message\')\n;\n'
        'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (\'chat\', \'0001_initial\', '
        'clock_timestamp()) RETURNING "id"\n;\n'
    )


@pytest.mark.django_db
def test_a_statement_ending_in_a_comment_does_not_swallow_the_next_one(acme: Tenant) -> None:
    executed = [
        ('CREATE TABLE "first" ("id" int) -- a note at the end', None, False),
        ('CREATE TABLE "second" ("id" int)', None, False),
    ]
    recipe = schema_recipe._recipe_from(executed, schema_name=acme.schema_name)
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute('CREATE SCHEMA "recipe_scratch"; SET LOCAL search_path = "recipe_scratch"')
        cursor.execute(recipe)
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'recipe_scratch' ORDER BY 1")
        assert cursor.fetchall() == [("first",), ("second",)]
