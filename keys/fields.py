"""A text column stored encrypted with the current tenant's data key (keys.crypto).

Use it for anything a tenant would not want a database dump to reveal: prompt bodies, messages, responses,
document text. Only ``""`` is stored as is (an empty value reveals nothing and lets pending rows stay
blank). Encrypted values cannot be searched or compared in SQL: filter on other columns.
"""

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from keys.crypto import decrypt_text, encrypt_text


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    description = "Text encrypted with the tenant's data key"

    def from_db_value(
        self, value: str | None, expression: Any, connection: BaseDatabaseWrapper
    ) -> str | None:
        if not value:
            return value
        return decrypt_text(value, schema=getattr(connection, "schema_name", None))

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        value = self.get_prep_value(value)
        if not value:
            return value
        return encrypt_text(value, schema=getattr(connection, "schema_name", None))
