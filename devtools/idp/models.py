from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    # The OIDC subject comes from the users file so it stays stable when the SQLite
    # database is deleted and rebuilt; relying parties key their accounts on it.
    sub = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True)
    tenant = models.CharField(max_length=63, blank=True)  # "" = platform staff
    roles = models.JSONField(default=list, blank=True)

    def __str__(self):
        return self.username


class ServiceClient(models.Model):
    """A confidential client that gets tokens for itself (client credentials grant), on behalf of one
    tenant: its access tokens carry that tenant and these roles, like a user's would."""

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="service_client"
    )
    tenant = models.CharField(max_length=63)
    roles = models.JSONField(default=list)

    def __str__(self):
        return f"{self.application.client_id} ({self.tenant})"
