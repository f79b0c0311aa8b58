"""Envelope encryption at rest: what the database holds, what the keys open, and key rotation."""

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context, tenant_context

from chat.actions import do_post_user_message
from chat.models import Conversation, Message
from keys import crypto
from keys.crypto import EncryptionError, decrypt_text, encrypt_text, forget_cached_keys
from keys.kms import EnvironmentMasterKeys, KeyUnwrapError, generate_master_key_entry
from keys.models import TenantKey
from lifecycle.actions import do_create_tenant
from lifecycle.rotation import do_rewrap_data_keys, do_rotate_tenant_data_key
from prompts.actions import VersionDraft, do_create_prompt_template
from tenants.models import Tenant
from tests.conftest import make_member


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    forget_cached_keys()
    yield
    forget_cached_keys()


def raw_column(table: str, column: str, where: str = "", params: tuple = ()) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} {where}", params)  # noqa: S608 - test-only, fixed names
        return [row[0] for row in cursor.fetchall()]


def draft(body: str) -> VersionDraft:
    return VersionDraft(body=body, model="sim-model", temperature=Decimal("0.5"), max_tokens=64)


@pytest.mark.django_db
def test_database_holds_no_plaintext_prompt_or_message(acme: Tenant) -> None:
    canary = f"canary-{uuid.uuid4()}"
    admin = make_member(acme, roles=["tenant_admin"])
    with tenant_context(acme):
        do_create_prompt_template(
            name="Secret agent",
            description="",
            draft=draft(f"You are the {canary} assistant.\nNever reveal {canary}."),
            acting_user=admin,
        )
        conversation = Conversation.objects.create(owner=admin)
        do_post_user_message(conversation, f"My secret is {canary}")

        bodies = raw_column("prompts_promptversion", "body")
        contents = raw_column("chat_message", "content", "WHERE conversation_id = %s", (conversation.id,))
        titles = raw_column("chat_conversation", "title", "WHERE id = %s", (conversation.id,))
        assert bodies and contents and titles
        for stored in bodies + contents + titles:
            assert canary not in stored
            assert stored.startswith("cs1:") or stored == ""  # "" = the pending reply
        # The whole table, as a dump would show it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT t::text FROM prompts_promptversion t")
            assert all(canary not in row[0] for row in cursor.fetchall())
        # Read back through the model: the plaintext returns.
        assert Message.objects.get(conversation=conversation, role="user").content == f"My secret is {canary}"
        assert Conversation.objects.get(id=conversation.id).title == f"My secret is {canary}"


@pytest.mark.django_db
def test_public_schema_holds_only_wrapped_keys(acme: Tenant) -> None:
    with schema_context("public"):
        key = TenantKey.objects.get(tenant=acme, state=TenantKey.State.ACTIVE)
        data_key = crypto.unwrap_data_key(key, "acme")
        assert len(data_key) == 32
        assert data_key not in bytes(key.wrapped_key)
        with pytest.raises(EncryptionError, match="inside a tenant"):
            encrypt_text("some tenant text")


@pytest.mark.django_db
def test_ciphertext_copied_to_another_tenant_does_not_decrypt(acme: Tenant, globex: Tenant) -> None:
    with tenant_context(acme):
        token = encrypt_text("acme's confidential instructions")
    with tenant_context(globex), pytest.raises(EncryptionError):
        decrypt_text(token)
    with tenant_context(acme):
        tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
        with pytest.raises(EncryptionError):
            decrypt_text(tampered)
        with pytest.raises(EncryptionError, match="not in the encrypted format"):
            decrypt_text("plain text that slipped in")


def test_master_key_configuration_is_checked() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="empty"):
        EnvironmentMasterKeys([])
    with pytest.raises(ImproperlyConfigured, match="base64url-of-32-bytes"):
        EnvironmentMasterKeys(["k1:dG9vLXNob3J0"])
    kms = EnvironmentMasterKeys([generate_master_key_entry("a")])
    master_id, wrapped = kms.wrap(b"x" * 32, context=b"tenant-a")
    assert kms.unwrap(master_id, wrapped, context=b"tenant-a") == b"x" * 32
    with pytest.raises(KeyUnwrapError):
        kms.unwrap(master_id, wrapped, context=b"tenant-b")


@pytest.mark.usefixtures("committed_db")
def test_rewrap_under_a_new_master_key_keeps_every_row_readable(settings) -> None:  # type: ignore[no-untyped-def]
    slug = f"rewrap_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(slug=slug, name="Rewrap Ltd", domains=[f"{slug}.localhost"])
    member = make_member(tenant)
    with tenant_context(tenant):
        conversation = Conversation.objects.create(owner=member)
        Message.objects.create(conversation=conversation, role="user", content="written under the old master")
    old_entries = list(settings.CONVOSUITE_MASTER_KEYS)
    new_entry = generate_master_key_entry("next")
    with override_settings(CONVOSUITE_MASTER_KEYS=[new_entry, *old_entries]):
        changed = do_rewrap_data_keys(log=lambda line: None)
        assert changed >= 1
        assert set(TenantKey.objects.values_list("master_key_id", flat=True)) == {"next"}
    try:
        # With only the new master key, nothing depends on the old one any more.
        with override_settings(CONVOSUITE_MASTER_KEYS=[new_entry]):
            forget_cached_keys()
            with tenant_context(tenant):
                assert (
                    Message.objects.get(conversation=conversation).content == "written under the old master"
                )
        # And the old master key alone no longer opens the re-wrapped keys.
        forget_cached_keys()
        with tenant_context(tenant), pytest.raises(KeyUnwrapError):
            Message.objects.get(conversation=conversation)
    finally:
        # Put the session's keys back under the configured master key for the other tests and processes.
        with override_settings(CONVOSUITE_MASTER_KEYS=[*old_entries, new_entry]):
            do_rewrap_data_keys(log=lambda line: None)
    forget_cached_keys()
    with tenant_context(tenant):
        assert Message.objects.get(conversation=conversation).content == "written under the old master"


@pytest.mark.usefixtures("committed_db")
def test_rotating_a_tenant_key_reencrypts_every_row_and_retires_the_old_key() -> None:
    slug = f"rotate_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(slug=slug, name="Rotate Ltd", domains=[f"{slug}.localhost"])
    admin = make_member(tenant, roles=["tenant_admin"])
    texts = [f"message number {i} with some private words" for i in range(25)]
    with tenant_context(tenant):
        conversation = Conversation.objects.create(owner=admin)
        for text in texts:
            Message.objects.create(conversation=conversation, role="user", content=text)
        do_create_prompt_template(
            name="Agent", description="", draft=draft("Be kind to $user_name."), acting_user=admin
        )
        assert {value.split(":")[1] for value in raw_column("chat_message", "content")} == {"1"}

    report = do_rotate_tenant_data_key(tenant, log=lambda line: None)

    assert report.old_key_ids == [1] and report.new_key_id == 2
    # The messages and the body; its variables are empty, stored blank (keys.fields.EncryptedJSONField).
    assert report.rows_reencrypted == len(texts) + 1
    assert "chat_message.content" in report.columns and "prompts_promptversion.body" in report.columns
    states = dict(TenantKey.objects.filter(tenant=tenant).values_list("key_id", "state"))
    assert states == {1: TenantKey.State.RETIRED, 2: TenantKey.State.ACTIVE}
    with tenant_context(tenant):
        assert {value.split(":")[1] for value in raw_column("chat_message", "content")} == {"2"}
        assert {value.split(":")[1] for value in raw_column("prompts_promptversion", "body")} == {"2"}
        forget_cached_keys()
        assert (
            list(Message.objects.filter(conversation=conversation).values_list("content", flat=True)) == texts
        )
        from audit.models import AuditEvent

        event = AuditEvent.objects.get(kind="keys.data_key_rotated")
        assert event.details["new_key_id"] == 2


@pytest.mark.usefixtures("committed_db")
def test_migration_encrypts_messages_stored_as_plaintext() -> None:
    import importlib

    migration = importlib.import_module("chat.migrations.0003_encrypt_existing_message_content")
    slug = f"legacy_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(slug=slug, name="Legacy Ltd", domains=[f"{slug}.localhost"])
    member = make_member(tenant)
    with tenant_context(tenant):
        conversation = Conversation.objects.create(owner=member)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE chat_conversation SET title = %s WHERE id = %s", ["Old title", conversation.id]
            )
            cursor.execute(
                "INSERT INTO chat_message "
                "(id, conversation_id, role, status, content, error_for_user, citations, created_at) "
                "VALUES (%s, %s, 'user', 'done', %s, '', '[]'::jsonb, now())",
                [uuid.uuid4(), conversation.id, "written before encryption existed"],
            )

        class Editor:
            pass

        editor = Editor()
        editor.connection = connection  # type: ignore[attr-defined]
        migration.encrypt_plaintext_messages(None, editor)
        [stored] = raw_column("chat_message", "content")
        assert stored.startswith("cs1:") and "before encryption" not in stored
        assert Message.objects.get(conversation=conversation).content == "written before encryption existed"
        [title] = raw_column("chat_conversation", "title", "WHERE id = %s", (conversation.id,))
        assert title.startswith("cs1:")
        assert Conversation.objects.get(id=conversation.id).title == "Old title"


@pytest.mark.usefixtures("committed_db")
def test_rotation_never_overwrites_a_row_changed_while_it_was_being_reencrypted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lifecycle import rotation

    slug = f"race_{uuid.uuid4().hex[:8]}"
    tenant = do_create_tenant(slug=slug, name="Race Ltd", domains=[f"race-{slug[5:]}.localhost"])
    member = make_member(tenant)
    with tenant_context(tenant):
        conversation = Conversation.objects.create(owner=member)
        message = Message.objects.create(
            conversation=conversation, role="assistant", content="first draft answer"
        )
    real_decrypt = rotation.decrypt_text
    interfered: list[bool] = []

    def decrypt_while_someone_writes(token: str, *, schema: str | None = None, remember: bool = True) -> str:
        plaintext = real_decrypt(token, schema=schema, remember=remember)
        if not interfered:
            # Another process saves the row between the rotation's read and its write.
            interfered.append(True)
            Message.objects.filter(pk=message.pk).update(content="final answer written concurrently")
        return plaintext

    monkeypatch.setattr(rotation, "decrypt_text", decrypt_while_someone_writes)
    report = do_rotate_tenant_data_key(tenant, log=lambda line: None)
    assert report.conflicts_retried == 1 and report.passes >= 1
    forget_cached_keys()
    with tenant_context(tenant):
        assert Message.objects.get(pk=message.pk).content == "final answer written concurrently"
        assert {value.split(":")[1] for value in raw_column("chat_message", "content")} == {"2"}


@pytest.mark.django_db
def test_bulk_decryptor_opens_what_encrypt_text_sealed_and_refuses_tampering(acme: Tenant) -> None:
    with tenant_context(acme):
        tokens = [encrypt_text(f"export row {i} with private words") for i in range(3)]
        decrypt = crypto.bulk_decryptor("acme")
        assert [decrypt(token) for token in tokens] == [decrypt_text(token) for token in tokens]
        prefix, key_id, body = tokens[0].split(":")
        tampered = f"{prefix}:{key_id}:{body[:-6]}AAAAA="
        with pytest.raises(EncryptionError):
            decrypt(tampered)
        with pytest.raises(EncryptionError, match="inside a tenant"):
            crypto.bulk_decryptor("public")
