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
