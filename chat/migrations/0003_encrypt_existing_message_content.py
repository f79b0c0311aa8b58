"""Encrypt message text and conversation titles written before encryption at rest (runs in each tenant's
schema)."""

from django.db import migrations


def encrypt_plaintext_messages(apps, schema_editor):
    from keys.migration_helpers import encrypt_plaintext_column

    encrypt_plaintext_column(schema_editor, "chat_message", "content")
    encrypt_plaintext_column(schema_editor, "chat_conversation", "title")


def decrypt_messages(apps, schema_editor):
    from keys.migration_helpers import decrypt_column

    decrypt_column(schema_editor, "chat_message", "content")
    decrypt_column(schema_editor, "chat_conversation", "title")


class Migration(migrations.Migration):
    dependencies = [("chat", "0002_encrypted_content_and_agent")]

    operations = [migrations.RunPython(encrypt_plaintext_messages, decrypt_messages)]
