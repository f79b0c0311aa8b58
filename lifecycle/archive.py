"""One archive file with everything a tenant owns, written before its schema is dropped.

Every table of the tenant's schema is dumped generically (one JSON object per row, JSONL), so apps added
later are covered without touching this code. The platform's records about the tenant (tenant row, domains,
break-glass grants) go in too. manifest.json lists each file with its row count and sha256.
"""

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from keys.crypto import PREFIX as ENCRYPTED_PREFIX
from keys.crypto import bulk_decryptor
from keys.fields import EncryptedJSONField
from tenants.models import BreakGlassGrant, Domain, Tenant

ARCHIVE_FORMAT = "convosuite-tenant-archive/1"


def tenant_tables(schema_name: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
            [schema_name],
        )
        return [row[0] for row in cursor.fetchall()]


class _HashingWriter:
    def __init__(self, target: Any) -> None:
        self.target, self.digest, self.rows = target, hashlib.sha256(), 0

    def write_line(self, line: str) -> None:
        data = line.encode() + b"\n"
        self.digest.update(data)
        self.target.write(data)
        self.rows += 1


def _dump_table(
    archive: zipfile.ZipFile,
    schema_name: str,
    table: str,
    decrypt: Callable[[str], str],
    json_columns: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    query = sql.SQL("SELECT row_to_json(t)::text FROM {}.{} AS t").format(
        sql.Identifier(schema_name), sql.Identifier(table)
    )
    connection.ensure_connection()
    with archive.open(f"schema/{table}.jsonl", "w") as member:
        writer = _HashingWriter(member)
        # A server-side cursor streams big tables instead of loading them into memory; it needs a transaction.
        with transaction.atomic(), connection.connection.cursor(name=f"export_{table}") as cursor:  # type: ignore[union-attr]
            cursor.itersize = 2000
            cursor.execute(query)
            for (line,) in cursor:
                writer.write_line(_with_plaintext(line, decrypt, json_columns))
    return {"file": f"schema/{table}.jsonl", "rows": writer.rows, "sha256": writer.digest.hexdigest()}


def _with_plaintext(
    line: str, decrypt: Callable[[str], str], json_columns: frozenset[str] = frozenset()
) -> str:
    """The archive outlives the tenant's data key (destroyed right after it is written), so every value the
    key encrypted is written in the clear: the archive is what the tenant takes away. Encrypted JSON
    columns (json_columns) are written as the JSON they hold, not as text."""
    if f'"{ENCRYPTED_PREFIX}:' not in line:
        return line
    row = json.loads(line)
    for column, value in row.items():
        if isinstance(value, str) and value.startswith(f"{ENCRYPTED_PREFIX}:"):
            plaintext = decrypt(value)
            row[column] = json.loads(plaintext) if column in json_columns else plaintext
    return json.dumps(row, ensure_ascii=False)


def _encrypted_json_columns() -> dict[str, frozenset[str]]:
    """table -> its EncryptedJSONField columns, over every installed model."""
    columns: dict[str, set[str]] = {}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedJSONField):
                columns.setdefault(model._meta.db_table, set()).add(str(field.column))
    return {table: frozenset(names) for table, names in columns.items()}


def _dump_rows(archive: zipfile.ZipFile, filename: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    with archive.open(filename, "w") as member:
        writer = _HashingWriter(member)
        for row in rows:
            writer.write_line(json.dumps(row, cls=DjangoJSONEncoder, sort_keys=True))
    return {"file": filename, "rows": writer.rows, "sha256": writer.digest.hexdigest()}


def write_tenant_archive(tenant: Tenant, path: Path) -> str:
    """Write the archive to `path` and return its sha256 (kept on the tombstone)."""
    schema_name = tenant.schema_name
    files: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        json_columns = _encrypted_json_columns()
        decrypt = bulk_decryptor(schema_name)
        for table in tenant_tables(schema_name):
            files[table] = _dump_table(
                archive, schema_name, table, decrypt, json_columns.get(table, frozenset())
            )
        platform_rows = {
            "platform/tenant.jsonl": list(Tenant.objects.filter(pk=tenant.pk).values()),
            "platform/domains.jsonl": list(Domain.objects.filter(tenant=tenant).values()),
            "platform/break_glass_grants.jsonl": list(
                BreakGlassGrant.objects.filter(tenant=tenant).values(
                    "id", "staff__email", "reason", "opened_at", "expires_at", "closed_at"
                )
            ),
        }
        for filename, rows in platform_rows.items():
            files[filename] = _dump_rows(archive, filename, rows)
        manifest = {
            "format": ARCHIVE_FORMAT,
            "tenant": {"slug": schema_name, "name": tenant.name},
            "exported_at": timezone.now().isoformat(),
            "files": files,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    digest = hashlib.sha256()
    with path.open("rb") as archive_file:
        for block in iter(lambda: archive_file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
