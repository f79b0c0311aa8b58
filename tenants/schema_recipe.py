"""A new tenant's schema, built fast by replaying what migrating a fresh schema executed.

Migrating a fresh tenant schema runs the same statements every time: most of its ~1 s is Django rendering
model states for ~50 migrations and ~370 `SET search_path` round trips, not PostgreSQL. So the first tenant
created with a given set of migrations is built the ordinary way (`migrate_schemas`) while every statement
is recorded; the statements that change the schema (DDL, the content-type, permission and django_migrations
rows) become a recipe, stored in the public schema under a fingerprint of every migration file and the
library versions. Every later tenant with the same fingerprint gets its schema from one transaction that
replays the recipe: the same DDL in the same order, so the same tables, constraint and index names,
triggers and row ids as `migrate_schemas` would give it (tests/test_tenant_schema_recipe.py compares them).

This is not django-tenants' schema cloning (which copies a template schema's catalog and loses the
dimension of vector columns): nothing is copied, the migrations' own statements run again.

A recording is refused (the tenant is still migrated the ordinary way, just not recorded) when it is not
clearly schema-only: rows written anywhere but Django's bookkeeping tables (django_migrations, content
types, permissions), a statement naming the schema, a rolled-back savepoint, a read that may have side
effects, or a statement that is neither DDL nor a plain write. A replay that fails rolls back and falls back to
`migrate_schemas`. `TENANT_SCHEMA_REPLAY=False` turns replaying off.
"""

import enum
import hashlib
import importlib.metadata
import importlib.util
import logging
import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, cast

import django
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.backends.postgresql.operations import DatabaseOperations
from django.db.migrations.loader import MigrationLoader
from django_tenants.signals import schema_migrated, schema_pre_migration

from tenants.models import Tenant, TenantSchemaRecipe

logger = logging.getLogger(__name__)

# Bumped when the recording or replaying rules below change, so that older recipes are not used.
RECIPE_FORMAT = "1"

_SKIPPED_PREFIXES = ("SELECT", "SHOW", "SAVEPOINT", "RELEASE SAVEPOINT")
_SEARCH_PATH = re.compile(r"^SET\s+search_path\b", re.IGNORECASE)
# Reads are left out of the recipe; these functions would make a read change something.
_SIDE_EFFECT_IN_READ = re.compile(r"\b(setval|nextval|set_config|pg_advisory\w*|lo_\w+)\s*\(", re.IGNORECASE)
# What a recipe may contain. Anything else (WITH, COPY, DO, CALL, ...) could write where we cannot see.
_REPLAYABLE_PREFIXES = ("CREATE", "ALTER", "DROP", "COMMENT", "SET", "GRANT", "REVOKE")
_WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE")
_DATA_TARGET = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?([A-Za-z0-9_]+)"?', re.IGNORECASE)
# The only rows a recipe may write: Django's bookkeeping, the same for every tenant. A data migration that
# writes anything else (a settings row, a random salt) must run for each tenant, so it is not recorded.
_BOOKKEEPING_TABLES = frozenset({"django_migrations", "django_content_type", "auth_permission"})
_MIGRATION_ROW = 'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (%s, %s, %s)'


class SchemaBuild(enum.StrEnum):
    REPLAYED = "replayed"  # from a recipe
    MIGRATED = "migrated"  # migrate_schemas, and recorded as the recipe for later tenants
    MIGRATED_UNRECORDED = "migrated, not recorded"  # migrate_schemas; the recording was refused or off


class RecordingRefused(Exception):
    """What migrating the schema executed cannot safely be replayed for another tenant."""


@cache
def migrations_fingerprint() -> str:
    """Changes whenever what migrating a fresh tenant schema executes could change: any migration file of
    any installed app, the app lists, and the versions of Django, django-tenants, pgvector and PostgreSQL.

    Cached per process: a process migrates with the migration modules it loaded at start."""
    digest = hashlib.sha256()
    for part in (
        RECIPE_FORMAT,
        django.get_version(),
        importlib.metadata.version("django-tenants"),
        importlib.metadata.version("pgvector"),
        str(connection.pg_version),  # type: ignore[attr-defined]
        repr(list(settings.SHARED_APPS)),
        repr(list(settings.TENANT_APPS)),
    ):
        digest.update(part.encode() + b"\0")
    for app_config in sorted(apps.get_app_configs(), key=lambda config: config.label):
        for path in _migration_files(app_config.label):
            digest.update(f"{app_config.label}/{path.name}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _migration_files(app_label: str) -> list[Path]:
    module_name, _ = MigrationLoader.migrations_module(app_label)
    if module_name is None:
        return []
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(
        path for location in spec.submodule_search_locations for path in Path(location).glob("*.py")
    )


def do_build_tenant_schema(tenant: Tenant) -> SchemaBuild:
    """Create the tenant's schema and bring it to the state `migrate_schemas` would, the fastest safe way."""
    fingerprint = migrations_fingerprint()
    if settings.TENANT_SCHEMA_REPLAY:
        recipe = _recipe_for(fingerprint)
        if recipe is not None:
            try:
                replay_recipe(tenant, recipe)
                logger.info("Schema of %s replayed from recipe %s", tenant.schema_name, fingerprint[:12])
                return SchemaBuild.REPLAYED
            except Exception:
                logger.exception(
                    "Replaying the schema recipe for %s failed; migrating it instead", tenant.schema_name
                )
                _forget_recipe(fingerprint)
        try:
            recipe = migrate_and_record(tenant)
        except RecordingRefused as refusal:
            logger.warning(
                "Schema of %s migrated but not recorded as a recipe: %s", tenant.schema_name, refusal
            )
            return SchemaBuild.MIGRATED_UNRECORDED
        _remember_recipe(fingerprint, recipe, recorded_from=tenant.schema_name)
        logger.info("Schema of %s migrated and recorded as recipe %s", tenant.schema_name, fingerprint[:12])
        return SchemaBuild.MIGRATED
    migrate_schema(tenant)
    return SchemaBuild.MIGRATED_UNRECORDED


def migrate_schema(tenant: Tenant) -> None:
    """The ordinary way: CREATE SCHEMA and migrate_schemas for it (what django-tenants does)."""
    tenant.create_schema(check_if_exists=True, verbosity=0)


def migrate_and_record(tenant: Tenant) -> str:
    """Migrate the tenant's schema the ordinary way and return the recipe of what it executed.

    Raises RecordingRefused (after the schema was migrated) when the statements cannot be replayed safely."""
    executed: list[tuple[str, Any, bool]] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append((sql, params, many))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        migrate_schema(tenant)
    return _recipe_from(executed, schema_name=tenant.schema_name)


def replay_recipe(tenant: Tenant, recipe: str) -> None:
    """Create the tenant's schema and run the recipe in it, in one transaction."""
    schema = tenant.schema_name
    schema_pre_migration.send(replay_recipe, schema_name=schema)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE SCHEMA {connection.ops.quote_name(schema)}")
            # The same search path the migrations ran with: the tenant's schema first, then public.
            connection.set_schema(schema)  # type: ignore[attr-defined]
            with connection.cursor() as cursor:
                cursor.execute(recipe)
    finally:
        connection.set_schema_to_public()  # type: ignore[attr-defined]
    schema_migrated.send(replay_recipe, schema_name=schema)


def _recipe_from(executed: Sequence[tuple[str, Any, bool]], *, schema_name: str) -> str:
    # The separator on a line of its own: a statement ending in a -- comment cannot swallow it.
    return "".join(f"{statement}\n;\n" for statement in recipe_statements(executed, schema_name=schema_name))


def recipe_statements(executed: Sequence[tuple[str, Any, bool]], *, schema_name: str) -> list[str]:
    """The statements to replay, parameters inlined, in the order they were executed."""
    ops = cast(DatabaseOperations, connection.ops)  # PostgreSQL's: it can inline parameters
    mentions_schema = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(schema_name)}(?![A-Za-z0-9_])", re.IGNORECASE)
    statements: list[str] = []
    for sql, params, many in executed:
        text = sql.strip()
        keyword = text.upper()
        if text == f"CREATE SCHEMA {connection.ops.quote_name(schema_name)}" or _SEARCH_PATH.match(text):
            continue
        if keyword.startswith("ROLLBACK"):
            raise RecordingRefused("a savepoint was rolled back during the migrations")
        if keyword.startswith(_SKIPPED_PREFIXES):
            if _SIDE_EFFECT_IN_READ.search(text):
                raise RecordingRefused(f"a read with side effects: {text[:80]}")
            continue
        if not keyword.startswith(_REPLAYABLE_PREFIXES + _WRITE_PREFIXES):
            raise RecordingRefused(f"not a schema change: {text[:80]}")
        target = _DATA_TARGET.match(text)
        if target is not None and target.group(1) not in _BOOKKEEPING_TABLES:
            raise RecordingRefused(f"a data migration writes {target.group(1)}")
        if keyword.startswith(_WRITE_PREFIXES) and target is None:
            raise RecordingRefused(f"a write whose table is unclear: {text[:80]}")
        for one_params in params if many else [params]:
            if text.startswith(_MIGRATION_ROW):
                # Applied now, not when the recorded tenant was migrated.
                text_now = text.replace(_MIGRATION_ROW, _MIGRATION_ROW[:-3] + "clock_timestamp())", 1)
                statement = ops.compose_sql(text_now, list(one_params)[:2])
            else:
                statement = ops.compose_sql(text, one_params) if one_params else text
            if mentions_schema.search(statement):
                raise RecordingRefused(f"a statement names the schema {schema_name}: {statement[:80]}")
            statements.append(statement.rstrip().rstrip(";"))
    if not statements:
        raise RecordingRefused("nothing was executed")
    return statements


_recipes: dict[str, str] = {}


def _recipe_for(fingerprint: str) -> str | None:
    if fingerprint not in _recipes:
        stored = (
            TenantSchemaRecipe.objects.filter(fingerprint=fingerprint).values_list("sql", flat=True).first()
        )
        if stored is None:
            return None
        _recipes[fingerprint] = stored
    return _recipes[fingerprint]


def _remember_recipe(fingerprint: str, recipe: str, *, recorded_from: str) -> None:
    TenantSchemaRecipe.objects.get_or_create(
        fingerprint=fingerprint, defaults={"sql": recipe, "recorded_from": recorded_from}
    )
    _recipes[fingerprint] = recipe


def _forget_recipe(fingerprint: str) -> None:
    _recipes.pop(fingerprint, None)
    TenantSchemaRecipe.objects.filter(fingerprint=fingerprint).delete()
