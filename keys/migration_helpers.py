"""For data migrations that turn an existing plaintext column into an encrypted one.

Run it from a RunPython step after the AlterField; django-tenants runs it once per tenant schema. It reads and
writes the raw column, so it never depends on the field's own decryption of old rows, and it only touches
rows that are not encrypted yet (safe to run twice).
"""

from typing import Any

from keys.crypto import PREFIX, decrypt_text, encrypt_text, ensure_key_for_schema


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
        for row_pk, plaintext in rows:
            cursor.execute(
                f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s AND {qn(column)} = %s",  # noqa: S608
                [encrypt_text(plaintext, schema=schema), row_pk, plaintext],
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
        for row_pk, token in rows:
            cursor.execute(
                f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk)} = %s",  # noqa: S608
                [decrypt_text(token, schema=schema), row_pk],
            )
    return len(rows)
