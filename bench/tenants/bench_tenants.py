"""bench/tenants: provisioning time (lifecycle.actions.do_create_tenant; with TENANT_SCHEMA_REPLAY=False every
tenant runs migrate_schemas), request latency with many tenants in one database, migrate_schemas time.

Runs against its OWN database (dropped and recreated at the start), never the development or test one:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_co_bench \
        .venv/bin/python bench/tenants/bench_tenants.py --tenants 200 --requests 300

Prints one table. Requests go through Django's full middleware stack in-process (django.test.Client: tenant
resolution, session guard, auth, view, templates, real PostgreSQL) without a network hop, so the figures
are the server's own time per request.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # one table, not a log line per tenant


def recreate_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    name = db["NAME"]
    if not name.endswith("_bench"):
        raise SystemExit(f"Refusing to drop {name!r}: the bench database name must end with _bench.")
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db.get("PASSWORD") or None,
        dbname="postgres", autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def seed(tenant: Any) -> Any:
    """A signed-in admin with some history, so the pages run their real queries."""
    from django.test import Client
    from django_tenants.utils import schema_context, tenant_context

    from accounts.middleware import SESSION_TENANT_KEY
    from tests.factories import ConversationFactory, MessageFactory, ModelCallFactory, UserFactory

    with tenant_context(tenant):
        admin = UserFactory.create(roles=["tenant_admin", "end_user"])
        for _ in range(20):
            conversation = ConversationFactory.create(owner=admin)
            MessageFactory.create_batch(4, conversation=conversation)
        ModelCallFactory.create_batch(100, user=admin)
    client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
    with schema_context(tenant.schema_name):
        client.force_login(admin, backend="accounts.oidc.TenantOIDCBackend")
        session = client.session
        session[SESSION_TENANT_KEY] = tenant.schema_name
        session.save()
    return client


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300, help="per page and tenant")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    recreate_database()
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate_schemas", shared=True, verbosity=0)
    shared_seconds = time.perf_counter() - started

    from lifecycle.actions import do_create_tenant

    do_create_tenant(slug="public", name="Platform", domains=["localhost"])
    provisioning: list[float] = []
    tenants = []
    for number in range(1, args.tenants + 1):
        slug = f"t{number:03d}"
        started = time.perf_counter()
        tenants.append(do_create_tenant(slug=slug, name=f"Tenant {number}", domains=[f"{slug}.localhost"]))
        provisioning.append(time.perf_counter() - started)
        connection.set_schema_to_public()  # type: ignore[attr-defined]

    first, last = tenants[0], tenants[-1]
    clients = {first.schema_name: seed(first), last.schema_name: seed(last)}
    connection.set_schema_to_public()  # type: ignore[attr-defined]
    pages = ["/chat/", "/console/usage/live/", "/console/model-calls/"]
    latency: dict[tuple[str, str], list[float]] = {}
    for page in pages:
        for client in clients.values():  # warm-up
            assert client.get(page).status_code == 200, page
        for _ in range(args.requests):
            # Interleaved, so both tenants see the same machine load.
            for slug, client in clients.items():
                started = time.perf_counter()
                response = client.get(page)
                latency.setdefault((page, slug), []).append(time.perf_counter() - started)
                assert response.status_code == 200

    started = time.perf_counter()
    call_command("migrate_schemas", verbosity=0)
    migrate_seconds = time.perf_counter() - started

    print(
        f"\nbench/tenants: {args.tenants} tenants in one database, {args.requests} requests per page and tenant"
    )
    print(f"{'measure':<58} {'value':>14}")
    print("-" * 73)
    print(f"{'shared schema migrations (empty database)':<58} {shared_seconds:>12.2f} s")
    if settings.TENANT_SCHEMA_REPLAY:
        print(
            f"schemas: tenant 1 by migrate_schemas (recorded), tenants 2-{args.tenants} by replaying the recipe"
        )
    else:
        print("schemas: every tenant by migrate_schemas (TENANT_SCHEMA_REPLAY=False)")
    print(
        f"{'provision one tenant (row, data key, schema, domain): p50':<58} {ms(statistics.median(provisioning)):>14}"
    )
    print(f"{'provision one tenant: p95':<58} {ms(percentile(provisioning, 0.95)):>14}")
    print(f"{'provision one tenant: max':<58} {ms(max(provisioning)):>14}")
    print(
        f"{'provision tenant 1 / tenant ' + str(args.tenants):<58} {ms(provisioning[0]) + ' / ' + ms(provisioning[-1]):>14}"
    )
    print(f"{'migrate_schemas, all schemas, nothing pending':<58} {migrate_seconds:>12.2f} s")
    print()
    print(f"{'page':<26} {'tenant':<8} {'p50':>10} {'p95':>10}")
    for page in pages:
        for slug in clients:
            values = latency[(page, slug)]
            print(
                f"{page:<26} {slug:<8} {ms(statistics.median(values)):>10} {ms(percentile(values, 0.95)):>10}"
            )


if __name__ == "__main__":
    main()
