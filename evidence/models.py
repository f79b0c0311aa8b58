"""The platform's audit signing keys (public schema). Only public keys are stored: the private key comes
from the environment (evidence/signing.py)."""

from django.db import models


class SigningKey(models.Model):
    key_id = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=16, default="Ed25519")
    public_key_pem = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the environment switches to another key; kept so older exports stay verifiable.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.algorithm} {self.key_id}"
