"""Key rotation, safe to run while the product serves traffic.

Re-wrap (new master key): every data key is unwrapped with whichever configured master key wrapped it and
wrapped again with the current one. Data keys themselves do not change, so no row is touched. Roll out
the new master key first in every process as the first CONVOSUITE_MASTER_KEYS entry (old one second), run
the re-wrap, then drop the old entry.

Data key rotation (one tenant):
1. a new data key becomes active; the old one is demoted to decrypt-only (still opens old rows);
2. wait until every process has stopped encrypting with the old key (settings.CONVOSUITE_KEY_CACHE_SECONDS);
3. re-encrypt every encrypted column of the tenant's tables with compare-and-swap updates: a row that
   changed between our read and our write is left alone and picked up by the next pass, so a concurrent
   write is never overwritten with stale text;
4. repeat until a pass finds no row under an old key, then retire the old keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Model, TextField
from django_tenants.utils import tenant_context

from audit.actions import do_record_audit_event
from keys.crypto import PREFIX, create_data_key, decrypt_text, encrypt_text, forget_cached_keys
from keys.fields import ENCRYPTED_COLUMN_TYPES
from keys.kms import get_kms
from keys.migration_helpers import allow_reencryption_of_sealed_rows
from keys.models import TenantKey
from tenants.models import Tenant

REENCRYPT_BATCH = 200
MAX_PASSES = 50


@dataclass
class RotationReport:
    old_key_ids: list[int]
    new_key_id: int
    rows_reencrypted: int = 0
    conflicts_retried: int = 0
    passes: int = 0
    columns: list[str] = field(default_factory=list)


def encrypted_columns() -> Iterator[tuple[type[Model], TextField[Any, Any]]]:
    """Every encrypted column of the tenant apps' models (EncryptedTextField and its JSON variant,
    EncryptedTokenField): new ones are picked up automatically."""
    shared = {name.rsplit(".", 1)[-1] for name in settings.SHARED_APPS}
    tenant_labels = {name.rsplit(".", 1)[-1] for name in settings.TENANT_APPS} - shared
    for model in apps.get_models():
        if model._meta.app_label not in tenant_labels or model._meta.proxy:
            continue
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, ENCRYPTED_COLUMN_TYPES):
                yield model, model_field


def do_rewrap_data_keys(*, log: Callable[[str], None] = print) -> int:
    """Re-wrap every data key not yet wrapped by the current master key; returns how many changed."""
    kms = get_kms()
    current = kms.current_master_key_id()
    changed = 0
    for key_pk in TenantKey.objects.exclude(master_key_id=current).values_list("pk", flat=True):
        with transaction.atomic():
            key = TenantKey.objects.select_for_update().select_related("tenant").get(pk=key_pk)
            if key.master_key_id == current:
                continue
            context = f"convosuite-data-key:{key.tenant.schema_name}:{key.key_id}".encode()
            plain = kms.unwrap(key.master_key_id, bytes(key.wrapped_key), context=context)
            key.master_key_id, key.wrapped_key = kms.wrap(plain, context=context)
            key.save(update_fields=["master_key_id", "wrapped_key", "updated_at"])
            changed += 1
            log(f"re-wrapped data key {key.key_id} of {key.tenant.schema_name}")
    return changed


def _start_new_key(tenant: Tenant) -> tuple[list[int], int]:
    with transaction.atomic():
        keys = list(TenantKey.objects.select_for_update().filter(tenant=tenant))
        old_ids = [key.key_id for key in keys if key.state != TenantKey.State.RETIRED]
        TenantKey.objects.filter(tenant=tenant, state=TenantKey.State.ACTIVE).update(
            state=TenantKey.State.DECRYPT_ONLY
        )
        next_id = (TenantKey.objects.filter(tenant=tenant).aggregate(m=Max("key_id"))["m"] or 0) + 1
        create_data_key(tenant, key_id=next_id)
    forget_cached_keys()
    return old_ids, next_id


def _reencrypt_pass(
    model: type[Model], column: TextField[Any, Any], schema: str, new_key_id: int
) -> tuple[int, int, int]:
    """One sweep of a column: returns (rows still under an old key, re-encrypted, conflicts)."""
    qn = connection.ops.quote_name
    table, col, pk = qn(model._meta.db_table), qn(column.column), qn(model._meta.pk.column)  # type: ignore[union-attr]
    current_prefix = f"{PREFIX}:{new_key_id}:%"
    found = reencrypted = conflicts = 0
    last_pk = None
    while True:
        with connection.cursor() as cursor:
            after = f"AND {pk} > %s" if last_pk is not None else ""
            params: list[Any] = [current_prefix] + ([last_pk] if last_pk is not None else [])
            cursor.execute(
                f"SELECT {pk}, {col} FROM {table} WHERE {col} <> '' AND {col} NOT LIKE %s {after} "  # noqa: S608 - quoted identifiers
                f"ORDER BY {pk} LIMIT {REENCRYPT_BATCH}",
                params,
            )
            rows = cursor.fetchall()
        if not rows:
            return found, reencrypted, conflicts
        # One commit per batch, not per row; each row's lock is held only until its batch commits.
        with transaction.atomic(), connection.cursor() as cursor:
            allow_reencryption_of_sealed_rows(cursor)
            for row_pk, old_value in rows:
                found += 1
                plaintext = decrypt_text(old_value, schema=schema, remember=False)
                fresh = encrypt_text(plaintext, schema=schema, key_id=new_key_id, remember=False)
                cursor.execute(
                    f"UPDATE {table} SET {col} = %s WHERE {pk} = %s AND {col} = %s",  # noqa: S608 - quoted identifiers
                    [fresh, row_pk, old_value],
                )
                if cursor.rowcount == 1:
                    reencrypted += 1
                else:
                    conflicts += 1
        last_pk = rows[-1][0]


def do_rotate_tenant_data_key(
    tenant: Tenant, *, acting_label: str = "key rotation command", log: Callable[[str], None] = print
) -> RotationReport:
    old_ids, new_id = _start_new_key(tenant)
    report = RotationReport(old_key_ids=old_ids, new_key_id=new_id)
    log(f"{tenant.schema_name}: data key {new_id} active; keys {old_ids} decrypt-only")
    # Other processes may keep encrypting with the old key until their cache of the active key expires.
    time.sleep(settings.CONVOSUITE_KEY_CACHE_SECONDS + 0.5)
    columns = list(encrypted_columns())
    report.columns = [f"{model._meta.db_table}.{column.column}" for model, column in columns]
    with tenant_context(tenant):
        for report.passes in range(1, MAX_PASSES + 1):
            remaining = 0
            for model, column in columns:
                found, done, conflicts = _reencrypt_pass(model, column, tenant.schema_name, new_id)
                remaining += found - done
                report.rows_reencrypted += done
                report.conflicts_retried += conflicts
            log(
                f"pass {report.passes}: {report.rows_reencrypted} rows re-encrypted so far, {remaining} to retry"
            )
            if remaining == 0 and found_no_old_rows(columns, new_id):
                break
        else:
            raise RuntimeError(
                f"Rows of {tenant.schema_name} still use old keys after {MAX_PASSES} passes; run again."
            )
        with transaction.atomic():
            TenantKey.objects.filter(tenant=tenant, key_id__in=old_ids).update(state=TenantKey.State.RETIRED)
            do_record_audit_event(
                kind="keys.data_key_rotated",
                actor_label=acting_label,
                details={
                    "old_key_ids": old_ids,
                    "new_key_id": new_id,
                    "rows_reencrypted": report.rows_reencrypted,
                },
            )
    forget_cached_keys()
    return report


def found_no_old_rows(columns: list[tuple[type[Model], TextField[Any, Any]]], new_key_id: int) -> bool:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, column in columns:
            table, col = qn(model._meta.db_table), qn(column.column)
            cursor.execute(
                f"SELECT 1 FROM {table} WHERE {col} <> '' AND {col} NOT LIKE %s LIMIT 1",  # noqa: S608 - quoted identifiers
                [f"{PREFIX}:{new_key_id}:%"],
            )
            if cursor.fetchone() is not None:
                return False
    return True
