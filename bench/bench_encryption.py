"""Cost of encryption at rest, log redaction and key rotation, on this machine. Prints a table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<your db> \
    DJANGO_SETTINGS_MODULE=convosuite.settings.test python -m bench.bench_encryption

The database must be migrated (`python manage.py migrate_schemas --shared`); the bench creates a tenant
named bench_keys_<random> for its rows and drops it at the end.
"""

import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.models import User  # noqa: E402
from chat.models import Conversation, Message  # noqa: E402
from convosuite.log_redaction import MAX_REMEMBERED_TEXTS, remember_sensitive_text  # noqa: E402
from keys.crypto import decrypt_text, encrypt_text, forget_cached_keys  # noqa: E402
from lifecycle.actions import do_create_tenant  # noqa: E402
from lifecycle.rotation import do_rotate_tenant_data_key  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def per_op(label: str, func: Callable[[], object], repeat: int, unit: str = "µs") -> None:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    scale = 1e6 if unit == "µs" else 1e3
    p50 = statistics.median(samples) * scale
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1] * scale
    ROWS.append((label, f"{p50:,.1f} {unit}", f"{p99:,.1f} {unit}"))


def main() -> None:
    slug = f"bench_keys_{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    tenant = do_create_tenant(slug=slug, name="Bench", domains=[f"{slug.replace('_', '-')}.localhost"])
    ROWS.append(
        (
            "tenant created (schema, migrations, data key, domain)",
            f"{(time.perf_counter() - started) * 1e3:,.0f} ms",
            "-",
        )
    )
    try:
        from keys.crypto import create_data_key

        def new_key() -> None:
            key = create_data_key(tenant, key_id=900, state="decrypt_only")
            key.delete()

        per_op("data key created (generate, wrap, insert) and deleted", new_key, 50, unit="ms")
        with tenant_context(tenant):
            user = User.objects.create(username=f"bench-{uuid.uuid4().hex[:6]}")
            for size in (200, 2_000, 20_000):
                text = "x" * size
                token = encrypt_text(text)
                per_op(f"encrypt {size:,} chars", lambda text=text: encrypt_text(text), 2000)
                per_op(f"decrypt {size:,} chars", lambda token=token: decrypt_text(token), 2000)

            def cold() -> None:
                forget_cached_keys()
                encrypt_text("cold start of a process")

            per_op("first use in a process (unwrap data key)", cold, 200, unit="ms")

            conversation = Conversation.objects.create(owner=user)
            Message.objects.bulk_create(
                Message(conversation=conversation, role="user", content=f"message {i} " + "lorem ipsum " * 40)
                for i in range(200)
            )

            def read_encrypted() -> None:
                list(Message.objects.filter(conversation=conversation).values_list("content", flat=True))

            def read_raw() -> None:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT content FROM chat_message WHERE conversation_id = %s", [conversation.id]
                    )
                    cursor.fetchall()

            per_op("read 200 messages (~500 chars), decrypted", read_encrypted, 100, unit="ms")
            per_op("read 200 messages, raw ciphertext (no decryption)", read_raw, 100, unit="ms")

            Message.objects.bulk_create(
                Message(conversation=conversation, role="user", content=f"rotation row {i} " + "words " * 60)
                for i in range(10_000)
            )
        for i in range(MAX_REMEMBERED_TEXTS):
            remember_sensitive_text(f"registered sensitive text number {i} " + uuid.uuid4().hex)
        logger = logging.getLogger("bench.redaction")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        per_op(
            f"log record at INFO with {MAX_REMEMBERED_TEXTS} registered texts",
            lambda: logger.info("request finished tenant=%s status=%s", "acme", 200),
            5000,
        )
        started = time.perf_counter()
        report = do_rotate_tenant_data_key(tenant, log=lambda line: None)
        elapsed = time.perf_counter() - started - settings.CONVOSUITE_KEY_CACHE_SECONDS - 0.5
        ROWS.append(
            (
                f"key rotation: re-encrypt {report.rows_reencrypted:,} rows (after the cache wait)",
                f"{elapsed:,.2f} s",
                f"{report.rows_reencrypted / elapsed:,.0f} rows/s",
            )
        )
    finally:
        connection.set_schema_to_public()  # type: ignore[attr-defined]
        tenant.auto_drop_schema = True
        tenant.delete(force_drop=True)

    width = max(len(row[0]) for row in ROWS)
    print(f"{'measure':<{width}}  {'p50':>12}  {'p99 / rate':>14}")
    for label, p50, p99 in ROWS:
        print(f"{label:<{width}}  {p50:>12}  {p99:>14}")


if __name__ == "__main__":
    sys.exit(main())
