"""For data migrations that turn an existing plaintext column into an encrypted one.

Run it from a RunPython step after the AlterField; django-tenants runs it once per tenant schema. It reads and
writes the raw column, so it never depends on the field's own decryption of old rows, and it only touches
rows that are not encrypted yet (safe to run twice).
"""

from typing import Any

from keys.crypto import PREFIX, decrypt_text, encrypt_text, ensure_key_for_schema

# Read by the guard trigger of sealed evidence rows (gateway/migrations/0009): within a transaction that set
# it, a sealed row may change its encrypted columns and nothing else. Its hash covers the plaintext, which a
# re-encryption keeps, so the chain still verifies.
REENCRYPT_SETTING = "convosuite.reencrypt"


def allow_reencryption_of_sealed_rows(cursor: Any) -> None:
    """For the rest of the current transaction only (set_config(..., true) is SET LOCAL)."""
    cursor.execute("SELECT set_config(%s, 'on', true)", [REENCRYPT_SETTING])


def encrypt_plaintext_column(schema_editor: Any, table: str, column: str, pk: str = "id") -> int:
    connection = schema_editor.connection
    schema = connection.schema_name
    if schema == "public":
        return 0
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(pk)}, {qn(column)} FROM {qn(table)} "  # noqa: S608 - quoted identifiers
            f"WHERE {qn(column)} <> '' AND {qn(column)} NOT LIKE %s",
            [f"{PREFIX}:%"],
        )
        rows = cursor.fetchall()
    if not rows:
        return 0
    ensure_key_for_schema(schema)
    with connection.cursor() as cursor:
        allow_reencryption_of_sealed_rows(cursor)
        for row_pk, plaintext in rows:
            cursor.execute(
                f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s AND {qn(column)} = %s",  # noqa: S608
                [encrypt_text(plaintext, schema=schema, remember=False), row_pk, plaintext],
            )
    return len(rows)


def decrypt_column(schema_editor: Any, table: str, column: str, pk: str = "id") -> int:
    """The reverse, for a migration's backwards step."""
    connection = schema_editor.connection
    schema = connection.schema_name
    if schema == "public":
        return 0
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(pk)}, {qn(column)} FROM {qn(table)} WHERE {qn(column)} LIKE %s",  # noqa: S608
            [f"{PREFIX}:%"],
        )
        rows = cursor.fetchall()
        allow_reencryption_of_sealed_rows(cursor)
        for row_pk, token in rows:
            cursor.execute(
                f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s",  # noqa: S608
                [decrypt_text(token, schema=schema, remember=False), row_pk],
            )
    return len(rows)
