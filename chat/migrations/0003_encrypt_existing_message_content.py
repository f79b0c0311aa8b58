"""Encrypt message text written before encryption at rest. Runs in each tenant's schema (django-tenants);
reads and writes the raw column so that it never depends on the field's own decryption of old rows."""

from django.db import migrations


def encrypt_plaintext_messages(apps, schema_editor):
    from keys.crypto import PREFIX, encrypt_text, ensure_key_for_schema

    connection = schema_editor.connection
    schema = connection.schema_name
    if schema == "public":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, content FROM chat_message WHERE content <> '' AND content NOT LIKE %s", [f"{PREFIX}:%"])
        rows = cursor.fetchall()
    if not rows:
        return
    ensure_key_for_schema(schema)
    with connection.cursor() as cursor:
        for message_id, content in rows:
            cursor.execute(
                "UPDATE chat_message SET content = %s WHERE id = %s AND content = %s",
                [encrypt_text(content, schema=schema), message_id, content],
            )


def decrypt_messages(apps, schema_editor):
    from keys.crypto import PREFIX, decrypt_text

    connection = schema_editor.connection
    schema = connection.schema_name
    if schema == "public":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, content FROM chat_message WHERE content LIKE %s", [f"{PREFIX}:%"])
        rows = cursor.fetchall()
        for message_id, content in rows:
            cursor.execute(
                "UPDATE chat_message SET content = %s WHERE id = %s", [decrypt_text(content, schema=schema), message_id]
            )


class Migration(migrations.Migration):
    dependencies = [("chat", "0002_encrypted_content_and_agent")]

    operations = [migrations.RunPython(encrypt_plaintext_messages, decrypt_messages)]
