"""Columns stored encrypted with the current tenant's data key (keys.crypto).

Use them for anything a tenant would not want a database dump to reveal: prompt bodies, messages, responses,
document text. Encrypted values cannot be searched or compared in SQL: filter on other columns.
"""

import json
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from keys.crypto import decrypt_text, encrypt_text


def _schema(connection: BaseDatabaseWrapper) -> str | None:
    return getattr(connection, "schema_name", None)


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """Text; only ``""`` is stored as is (it reveals nothing and lets pending rows stay blank)."""

    description = "Text encrypted with the tenant's data key"

    def from_db_value(
        self, value: str | None, expression: Any, connection: BaseDatabaseWrapper
    ) -> str | None:
        if not value:
            return value
        return decrypt_text(value, schema=_schema(connection))

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        value = self.get_prep_value(value)
        if not value:
            return value
        return encrypt_text(value, schema=_schema(connection))


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (list, dict, text, number) serialised to text, then encrypted like EncryptedTextField.
    A drop-in for a JSONField whose content is confidential (e.g. the messages of a model call)."""

    description = "JSON encrypted with the tenant's data key"
    # django-stubs: what the attribute accepts and returns (any JSON value, not only str).
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        text = super().from_db_value(value, expression, connection)
        if text is None or text == "":
            return None if text is None else self.get_default()
        return json.loads(text)

    def to_python(self, value: Any) -> Any:
        return value

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        # An empty default ([] tool calls, the common case) reveals nothing: stored blank, read back as the
        # default, and never decrypted again (exports read a million of them).
        if value is not None and not value and value == self.get_default():
            return ""
        return super().get_db_prep_value(value, connection, prepared)

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False)

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)


class EncryptedTokenField(models.TextField):  # type: ignore[type-arg]
    """Text the application encrypts and decrypts itself (keys.crypto tokens, e.g. knowledge text that raw
    SQL reads): stored and returned as is. Declaring the column with this class is what makes key
    rotation (lifecycle.rotation) re-encrypt it like an EncryptedTextField."""

    description = "Text already encrypted with the tenant's data key"


# Every column type whose values are keys.crypto tokens: key rotation re-encrypts all of them.
ENCRYPTED_COLUMN_TYPES = (EncryptedTextField, EncryptedTokenField)
