"""bench/tenants/provision_phases.py: where the time of provisioning one tenant goes, phase by phase, for the
two ways a schema is built: replaying the recorded recipe, and migrate_schemas (the first tenant of a set of
migrations, or TENANT_SCHEMA_REPLAY=False).

Runs against its OWN database (dropped and recreated at the start; the name must end with _bench):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_provision_bench \\
        .venv/bin/python bench/tenants/provision_phases.py --tenants 20 [--profile]

Phases are the steps of lifecycle.actions.do_create_tenant (tenant row, data key, schema, domain), timed one by
one, plus what the default gateway policy (budgets; created by seed_demo today, not by create_tenant) would
add. --profile prints the top of a cProfile of the migrate_schemas way.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")

from bench_tenants import percentile, recreate_database  # noqa: E402


def timed(phases: dict[str, list[float]], name: str, step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    phases.setdefault(name, []).append(time.perf_counter() - started)
    return result


def provision(slug: str, phases: dict[str, list[float]], *, build: Callable[[Any], Any]) -> None:
    """do_create_tenant's steps, one by one."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from gateway.actions import do_create_default_policy
    from keys.crypto import ensure_tenant_key
    from tenants.models import Domain, Tenant

    started = time.perf_counter()
    tenant = timed(phases, "tenant row", lambda: Tenant.objects.create(schema_name=slug, name=slug))
    timed(phases, "data key", lambda: ensure_tenant_key(tenant))
    timed(phases, "schema", lambda: build(tenant))
    timed(
        phases,
        "domain",
        lambda: Domain.objects.create(domain=f"{slug}.localhost", tenant=tenant, is_primary=True),
    )
    phases.setdefault("total (do_create_tenant)", []).append(time.perf_counter() - started)

    def default_policy() -> None:
        with tenant_context(tenant):
            do_create_default_policy(actor_label="bench")

    timed(phases, "(not in create_tenant) default gateway policy + its audit event", default_policy)
    connection.set_schema_to_public()  # type: ignore[attr-defined]


def report(title: str, phases: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"{'phase':<66} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in phases.items():
        print(f"{name:<66} {statistics.median(values) * 1000:>8.1f} {percentile(values, 0.95) * 1000:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=20, help="per way of building the schema")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    recreate_database()
    from django.core.management import call_command

    from lifecycle.actions import do_create_tenant
    from tenants.schema_recipe import (
        migrate_and_record,
        migrate_schema,
        migrations_fingerprint,
        replay_recipe,
    )

    call_command("migrate_schemas", shared=True, verbosity=0)
    do_create_tenant(slug="public", name="Platform", domains=["localhost"])

    recipe: dict[str, str] = {}

    def record(tenant: Any) -> None:
        recipe["sql"] = migrate_and_record(tenant)

    first: dict[str, list[float]] = {}
    provision("first", first, build=record)
    report("first tenant in this process: migrate_schemas, recorded as the recipe", first)
    print(f"recipe: {len(recipe['sql']) // 1024} KiB, fingerprint {migrations_fingerprint()[:12]}")

    migrated: dict[str, list[float]] = {}
    profiler = cProfile.Profile()
    for number in range(args.tenants):
        if args.profile:
            profiler.enable()
        provision(f"m{number:03d}", migrated, build=migrate_schema)
        profiler.disable()
    report(f"migrate_schemas (TENANT_SCHEMA_REPLAY=False), {args.tenants} tenants", migrated)

    replayed: dict[str, list[float]] = {}
    for number in range(args.tenants):
        provision(f"r{number:03d}", replayed, build=lambda tenant: replay_recipe(tenant, recipe["sql"]))
    report(f"replayed recipe (the default after the first tenant), {args.tenants} tenants", replayed)

    if args.profile:
        print("\ncProfile of the migrate_schemas way, by cumulative time:")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
