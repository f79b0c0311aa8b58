"""bench/tenants/schema_build_variants.py: ways of building a tenant schema, timed side by side (interleaved, so
each sees the same machine load). Only the replay variants are used in the product; the others were evaluated.

Runs against its OWN database (dropped and recreated at the start; the name must end with _bench):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_provision_bench \\
        .venv/bin/python bench/tenants/schema_build_variants.py --tenants 10
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")

from bench_tenants import percentile, recreate_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=10, help="per variant")
    args = parser.parse_args()

    import django

    django.setup()
    recreate_database()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models.signals import post_migrate
    from django.test.utils import override_settings

    from tenants import schema_recipe
    from tenants.models import Tenant

    call_command("migrate_schemas", shared=True, verbosity=0)

    def new_tenant() -> Tenant:
        return Tenant.objects.create(schema_name=f"v{uuid.uuid4().hex[:8]}", name="variant")

    statements: list[str] = []
    real_statements = schema_recipe.recipe_statements

    def keep_statements(executed: Any, *, schema_name: str) -> list[str]:
        statements[:] = real_statements(executed, schema_name=schema_name)
        return statements

    schema_recipe.recipe_statements = keep_statements  # type: ignore[assignment]
    recipe = schema_recipe.migrate_and_record(new_tenant())
    schema_recipe.recipe_statements = real_statements

    def limit_set_calls(tenant: Tenant) -> None:
        with override_settings(TENANT_LIMIT_SET_CALLS=True):
            schema_recipe.migrate_schema(tenant)

    def without_post_migrate(tenant: Tenant) -> None:
        receivers = post_migrate.receivers[:]
        post_migrate.receivers = []
        post_migrate.sender_receivers_cache.clear()
        try:
            schema_recipe.migrate_schema(tenant)
        finally:
            post_migrate.receivers = receivers
            post_migrate.sender_receivers_cache.clear()

    def replay_one_by_one(tenant: Tenant) -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{tenant.schema_name}"')
            connection.set_schema(tenant.schema_name)  # type: ignore[attr-defined]
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)

    variants: dict[str, Callable[[Tenant], None]] = {
        "migrate_schemas (the old way)": schema_recipe.migrate_schema,
        "migrate_schemas, TENANT_LIMIT_SET_CALLS=True": limit_set_calls,
        "migrate_schemas, post_migrate receivers off (NOT the same schema)": without_post_migrate,
        "replay, statement by statement, one transaction": replay_one_by_one,
        "replay, one batch (what do_create_tenant does)": lambda tenant: schema_recipe.replay_recipe(
            tenant, recipe
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.tenants):
        for name, build in variants.items():
            tenant = new_tenant()
            started = time.perf_counter()
            build(tenant)
            times[name].append(time.perf_counter() - started)
            connection.set_schema_to_public()  # type: ignore[attr-defined]

    print(f"\nrecipe: {len(statements)} statements, {len(recipe) // 1024} KiB")
    print(f"{'schema build variant':<68} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in times.items():
        print(f"{name:<68} {statistics.median(values) * 1000:>8.1f} {percentile(values, 0.95) * 1000:>8.1f}")


if __name__ == "__main__":
    main()
