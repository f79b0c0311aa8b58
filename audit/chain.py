"""Per-tenant hash chains of append-only records (model calls, audit events).

Every chained row stores its sequence number, the previous row's hash and its own hash over a canonical
serialization (docs/audit.md, "Canonical serialization"). Appends to one chain of one tenant are serialized
by a PostgreSQL advisory transaction lock, so concurrent writers on any number of processes or machines
cannot fork the chain. A row enters its chain either when it is inserted (append_to_chain: audit events) or,
for a row that is written first and completed later (a model call claimed 'started', then finished), when
it becomes final (seal_in_chain). Until then its chain columns are NULL and it is not part of the chain;
once chained, a database trigger (audit/migrations, gateway/migrations) rejects UPDATE and DELETE.

Sensitive fields (prompt, response, tool calls) enter the hash through a salted commitment
sha256(salt || sha256(text)) instead of their text, so an export may show the text, only its SHA-256, or
nothing but the commitment, and the chain still verifies (verifier/verify_export.py repeats this logic
with no dependency on this project).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connection, models, transaction
from django.utils import timezone

from tenants.context import current_schema, in_tenant_schema

GENESIS_HASH = "0" * 64
CHAIN_COLUMNS = frozenset({"seq", "prev_hash", "record_hash", "chain_salt"})

M = TypeVar("M", bound=models.Model)


class ChainError(RuntimeError):
    pass


@dataclass(frozen=True)
class ChainSpec:
    """What the chain of one model is called and which of its fields are committed by salted digest."""

    name: str
    sensitive: frozenset[str] = frozenset()
    timestamp_field: str = "created_at"


_SPECS: dict[type[models.Model], ChainSpec] = {}


def register_chain(model_class: type[models.Model], spec: ChainSpec) -> None:
    missing = CHAIN_COLUMNS - {field.name for field in model_class._meta.concrete_fields}
    if missing:
        raise ChainError(f"{model_class.__name__} lacks the chain columns {sorted(missing)}.")
    _SPECS[model_class] = spec


def chained_models() -> list[type[models.Model]]:
    """Every registered chain's model, in registration order (each app registers its own in its ready())."""
    return list(_SPECS)


def spec_for(model_class: type[models.Model]) -> ChainSpec:
    try:
        return _SPECS[model_class]
    except KeyError:
        raise ChainError(f"{model_class.__name__} is not a registered hash chain.") from None


# --- canonical serialization -------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON, keys sorted, no whitespace, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_text(value: Any) -> bytes:
    """The bytes a sensitive field's SHA-256 is taken over: a string as UTF-8, anything else as canonical JSON."""
    return value.encode("utf-8") if isinstance(value, str) else canonical_json(value)


def format_timestamp(value: dt.datetime) -> str:
    if timezone.is_naive(value):
        raise ChainError("Chained timestamps must be timezone-aware.")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_field_value(field: models.Field[Any, Any], value: Any) -> Any:
    """The JSON value a model field contributes to the hash: fixed formats for decimals, datetimes, UUIDs."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return value
    value = field.to_python(value)
    if isinstance(value, Decimal):
        places = getattr(field, "decimal_places", None)
        if places is not None:
            value = value.quantize(Decimal(1).scaleb(-places))
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool | int | str):
        return value
    raise ChainError(f"Field {field.name} has a value of type {type(value).__name__} with no canonical form.")


def text_sha256(value: Any) -> str:
    return hashlib.sha256(canonical_text(value)).hexdigest()


def commitment(salt_hex: str, digest_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt_hex) + bytes.fromhex(digest_hex)).hexdigest()


def compute_record_hash(
    chain: str, seq: int, prev_hash: str, fields: dict[str, Any], commitments: dict[str, str]
) -> str:
    payload = {
        "chain": chain,
        "seq": seq,
        "prev_hash": prev_hash,
        "fields": fields,
        "commitments": commitments,
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def hashed_fields(model_class: type[models.Model]) -> list[models.Field[Any, Any]]:
    """Every stored column except the chain's own: a field another branch adds is covered automatically."""
    # An auto-increment id is only known after the insert, so it cannot be hashed; seq identifies the row.
    return [
        field
        for field in model_class._meta.concrete_fields
        if field.name not in CHAIN_COLUMNS and not isinstance(field, models.AutoField | models.BigAutoField)
    ]


@dataclass(frozen=True)
class CanonicalRecord:
    fields: dict[str, Any]
    sensitive: dict[str, Any]  # raw values of the sensitive fields, for exports


def _identity(value: Any) -> Any:
    return value


def _converter_for(field: models.Field[Any, Any]) -> Any:
    """A fast per-column converter equivalent to canonical_field_value (exports call it per row)."""
    if isinstance(
        field,
        models.JSONField | models.BooleanField | models.IntegerField | models.CharField | models.TextField,
    ):
        return _identity
    if isinstance(field, models.DecimalField):
        quantum = Decimal(1).scaleb(-(field.decimal_places or 0))

        def decimal_text(value: Any) -> Any:
            return None if value is None else format(Decimal(value).quantize(quantum), "f")

        return decimal_text
    if isinstance(field, models.DateTimeField):
        return lambda value: None if value is None else format_timestamp(value)
    if isinstance(field, models.UUIDField):
        return lambda value: None if value is None else str(value)
    if isinstance(field, models.ForeignKey):
        return _converter_for(field.target_field)
    return lambda value: canonical_field_value(field, value)


@dataclass(frozen=True)
class ColumnPlan:
    attname: str
    name: str
    sensitive: bool
    convert: Any


def column_plan(model_class: type[models.Model], spec: ChainSpec | None = None) -> list[ColumnPlan]:
    spec = spec or spec_for(model_class)
    return [
        ColumnPlan(field.attname, field.name, field.name in spec.sensitive, _converter_for(field))
        for field in hashed_fields(model_class)
    ]


def canonical_record(
    model_class: type[models.Model], values: dict[str, Any], spec: ChainSpec | None = None
) -> CanonicalRecord:
    """Split a row (attname -> value) into canonical plain fields and raw sensitive values.
    `spec` is given explicitly only by migrations, whose historical models are not registered."""
    fields: dict[str, Any] = {}
    sensitive: dict[str, Any] = {}
    for column in column_plan(model_class, spec):
        value = values.get(column.attname)
        if column.sensitive:
            sensitive[column.name] = value
        else:
            fields[column.attname] = column.convert(value)
    return CanonicalRecord(fields=fields, sensitive=sensitive)


def hash_row(
    model_class: type[models.Model],
    values: dict[str, Any],
    *,
    seq: int,
    prev_hash: str,
    salt: str,
    spec: ChainSpec | None = None,
) -> str:
    spec = spec or spec_for(model_class)
    record = canonical_record(model_class, values, spec)
    commitments = {name: commitment(salt, text_sha256(value)) for name, value in record.sensitive.items()}
    return compute_record_hash(spec.name, seq, prev_hash, record.fields, commitments)


def backfill_chain(model_class: type[models.Model], spec: ChainSpec) -> None:
    """Chain rows that existed before the chain columns did (migrations only: runs before the guard)."""
    prev_hash, seq = GENESIS_HASH, 0
    columns = [field.attname for field in model_class._meta.concrete_fields]
    pk_name = model_class._meta.pk.attname
    for values in model_class._default_manager.order_by(spec.timestamp_field, "pk").values(*columns):
        seq += 1
        salt = secrets.token_hex(16) if spec.sensitive else ""
        record_hash = hash_row(model_class, values, seq=seq, prev_hash=prev_hash, salt=salt, spec=spec)
        model_class._default_manager.filter(pk=values[pk_name]).update(
            seq=seq, prev_hash=prev_hash, record_hash=record_hash, chain_salt=salt
        )
        prev_hash = record_hash


def row_values(instance: models.Model) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


# --- appending -----------------------------------------------------------------------------------------


def chain_lock_key(schema: str, chain: str) -> int:
    """A signed 64-bit advisory-lock key for one chain of one tenant."""
    digest = hashlib.sha256(f"convosuite-chain:{schema}:{chain}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_chain(model_class: type[models.Model], cursor: Any = None) -> None:
    """Hold the chain's append lock until the current transaction ends."""
    if not connection.in_atomic_block:
        raise ChainError("lock_chain must run inside a transaction.")
    key = chain_lock_key(current_schema(), spec_for(model_class).name)
    if cursor is not None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        return
    with connection.cursor() as own_cursor:
        own_cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


@dataclass(frozen=True)
class ChainHead:
    seq: int
    record_hash: str
    timestamp: dt.datetime | None


def _timestamp_field(model_class: type[models.Model], spec: ChainSpec) -> models.Field[Any, Any]:
    field = model_class._meta.get_field(spec.timestamp_field)
    if not isinstance(field, models.Field):
        raise ChainError(f"{spec.timestamp_field} is not a column of {model_class.__name__}.")
    return field


def read_head(model_class: type[models.Model], cursor: Any = None) -> ChainHead:
    spec = spec_for(model_class)
    quote = connection.ops.quote_name
    timestamp_column = str(_timestamp_field(model_class, spec).column)
    sql = (
        f"SELECT seq, record_hash, {quote(timestamp_column)} FROM {quote(model_class._meta.db_table)}"  # noqa: S608
        # Unsealed rows (seq NULL, still in flight) are not part of the chain; DESC would sort them first.
        " WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
    )
    if cursor is not None:
        cursor.execute(sql)
        row = cursor.fetchone()
    else:
        with connection.cursor() as own_cursor:
            own_cursor.execute(sql)
            row = own_cursor.fetchone()
    if row is None:
        return ChainHead(seq=0, record_hash=GENESIS_HASH, timestamp=None)
    return ChainHead(seq=row[0], record_hash=row[1], timestamp=row[2])


@dataclass(frozen=True)
class ChainLink:
    """Where a row enters its chain: computed under the chain lock."""

    seq: int
    prev_hash: str
    record_hash: str
    timestamp: dt.datetime


def _head_and_stamp(model_class: type[models.Model], cursor: Any) -> tuple[ChainHead, dt.datetime]:
    """The caller holds the chain lock: the head, and the chain timestamp of the next row (never earlier
    than the head's, so time order equals chain order and a time window is a contiguous range of seq)."""
    head = read_head(model_class, cursor)
    now = timezone.now()
    return head, (max(now, head.timestamp) if head.timestamp else now)


def _link(
    model_class: type[models.Model],
    head: ChainHead,
    stamp: dt.datetime,
    record: CanonicalRecord,
    commitments: dict[str, str],
) -> ChainLink:
    """Hash `record`, stamped with `stamp`, as the row after `head`. Shared by append and seal."""
    spec = spec_for(model_class)
    record.fields[_timestamp_field(model_class, spec).attname] = format_timestamp(stamp)
    seq = head.seq + 1
    record_hash = compute_record_hash(spec.name, seq, head.record_hash, record.fields, commitments)
    return ChainLink(seq=seq, prev_hash=head.record_hash, record_hash=record_hash, timestamp=stamp)


def _commitments(spec: ChainSpec, record: CanonicalRecord) -> tuple[str, dict[str, str]]:
    salt = secrets.token_hex(16) if spec.sensitive else ""
    return salt, {name: commitment(salt, text_sha256(value)) for name, value in record.sensitive.items()}


def append_to_chain(model_class: type[M], row_fields: dict[str, Any] | None = None, **fields: Any) -> M:
    """Insert one final, never-to-change row at the head of the current tenant's chain for `model_class`.

    Everything that does not depend on the head (values, salt, commitments) is prepared before the chain
    lock is taken. Under the lock (held to the end of the enclosing transaction, so keep that short): read
    the head, stamp the timestamp (never earlier than the head's, so time order equals chain order), seq,
    prev_hash and hash, and insert the row exactly as hashed.
    """
    if not in_tenant_schema():
        raise ChainError("Hash chains belong to a tenant; no tenant schema is active.")
    spec = spec_for(model_class)
    instance = model_class(**(row_fields or {}), **fields)
    _normalize(instance)
    timestamp_column = _timestamp_field(model_class, spec).attname
    # raw=True (below) skips auto_now_add: such a column left empty gets the chain timestamp.
    auto_stamped = [
        field.attname
        for field in model_class._meta.concrete_fields
        if getattr(field, "auto_now_add", False)
        and field.attname != timestamp_column
        and getattr(instance, field.attname) is None
    ]
    record = canonical_record(model_class, row_values(instance), spec)
    salt, commitments = _commitments(spec, record)
    # No savepoint: a failed insert (e.g. a duplicate request id) fails the caller's transaction, which
    # Django requires callers to handle outside it anyway; this saves two round trips under the lock.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:  # one cursor: django-tenants sets search_path per cursor
            lock_chain(model_class, cursor)
            head, stamp = _head_and_stamp(model_class, cursor)
        if auto_stamped:
            for attname in auto_stamped:
                setattr(instance, attname, stamp)
            record = canonical_record(model_class, row_values(instance), spec)
        link = _link(model_class, head, stamp, record, commitments)
        setattr(instance, timestamp_column, link.timestamp)
        instance.seq = link.seq  # type: ignore[attr-defined]
        instance.prev_hash = link.prev_hash  # type: ignore[attr-defined]
        instance.record_hash = link.record_hash  # type: ignore[attr-defined]
        instance.chain_salt = salt  # type: ignore[attr-defined]
        # raw=True stores the attributes exactly as hashed: auto_now_add must not restamp the timestamp.
        instance.save_base(raw=True, force_insert=True)
    return instance


def seal_in_chain(model_class: type[models.Model], pk: Any) -> bool:
    """Chain a row that was written earlier and is now final (a model call claimed 'started', then
    finished): the row enters the chain as if append_to_chain had inserted it with its final values.

    Under the chain lock: read the head, stamp the chain timestamp (never earlier than the head's), hash
    the row's stored values exactly as append_to_chain would (same canonical form, same salted
    commitments), and set the chain columns and the stamp in one UPDATE guarded by `seq IS NULL`.
    Returns False if the row was already sealed (sealing twice is a no-op). Call it in the transaction
    that wrote the final values: the chain lock is held until that transaction ends."""
    if not in_tenant_schema():
        raise ChainError("Hash chains belong to a tenant; no tenant schema is active.")
    spec = spec_for(model_class)
    timestamp_column = _timestamp_field(model_class, spec).attname
    columns = [field.attname for field in model_class._meta.concrete_fields]
    manager = model_class._default_manager
    with transaction.atomic(savepoint=False):
        # The row lock first (outside the chain lock): no other writer can change it while it is hashed.
        values = manager.select_for_update().filter(pk=pk).values(*columns).first()
        if values is None:
            raise ChainError(f"{model_class.__name__} {pk} does not exist; nothing to seal.")
        if values["seq"] is not None:
            return False
        # Values read back from the database are in their stored form (jsonb numbers, rounded decimals).
        record = canonical_record(model_class, values, spec)
        salt, commitments = _commitments(spec, record)
        with connection.cursor() as cursor:
            lock_chain(model_class, cursor)
            head, stamp = _head_and_stamp(model_class, cursor)
        link = _link(model_class, head, stamp, record, commitments)
        sealed = manager.filter(pk=pk, seq__isnull=True).update(
            seq=link.seq,
            prev_hash=link.prev_hash,
            record_hash=link.record_hash,
            chain_salt=salt,
            **{timestamp_column: link.timestamp},
        )
    return sealed == 1


def _normalize(instance: models.Model) -> None:
    """Store every value exactly as hashed: UUIDs parsed, decimals rounded as the column would round them."""
    for field in hashed_fields(type(instance)):
        if isinstance(field, models.JSONField):
            value = getattr(instance, field.attname)
            if _contains_float(value):
                setattr(instance, field.attname, _as_stored_json(value))
            continue
        value = getattr(instance, field.attname)
        if value is None:
            continue
        value = field.to_python(value)
        if isinstance(field, models.DecimalField):
            value = Decimal(value).quantize(Decimal(1).scaleb(-(field.decimal_places or 0)))
        setattr(instance, field.attname, value)


def _contains_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_contains_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_float(item) for item in value)
    return False


def _as_stored_json(value: Any) -> Any:
    """The value as jsonb will give it back (jsonb keeps numbers as decimals: 1e+16 returns as an integer);
    hashing this form keeps a row with floats verifiable after the round trip."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (%s::jsonb)::text", [json.dumps(value)])
        row = cursor.fetchone()
    return json.loads(row[0]) if row else value


# --- checking ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def find_chain_breaks(
    model_class: type[models.Model], *, after: ChainHead | None = None, batch: int = 2000
) -> Iterable[ChainBreak]:
    """Walk the stored chain (from `after`, else from its first row) and yield every inconsistency."""
    expected_prev = after.record_hash if after else None
    expected_seq = after.seq + 1 if after else None
    queryset = model_class._default_manager.filter(seq__isnull=False).order_by("seq")  # sealed rows only
    if after:
        queryset = queryset.filter(seq__gt=after.seq)
    columns = [field.attname for field in model_class._meta.concrete_fields]
    for values in queryset.values(*columns).iterator(chunk_size=batch):
        seq = values["seq"]
        if expected_seq is not None and seq != expected_seq:
            yield ChainBreak(seq, f"expected seq {expected_seq}")
        if expected_prev is not None and values["prev_hash"] != expected_prev:
            yield ChainBreak(seq, "prev_hash does not match the previous record")
        if (
            hash_row(model_class, values, seq=seq, prev_hash=values["prev_hash"], salt=values["chain_salt"])
            != values["record_hash"]
        ):
            yield ChainBreak(seq, "record_hash does not match its contents")
        expected_prev, expected_seq = values["record_hash"], seq + 1
