"""State changes for people: created or refreshed from their identity at sign-in."""

from django.db import transaction

from accounts.identity import Identity
from accounts.models import Role, User


@transaction.atomic
def do_sync_user_from_identity(identity: Identity, *, is_platform: bool) -> User:
    """Find the user by (issuer, subject) in the current schema, create it if new, mirror claims."""
    user = User.objects.select_for_update().filter(issuer=identity.issuer, subject=identity.subject).first()
    if user is None:
        user = User(issuer=identity.issuer, subject=identity.subject, username=identity.username)
        user.set_unusable_password()
    user.email = identity.email
    user.display_name = identity.name
    user.roles = list(identity.roles)
    # Django admin is the platform console; tenant members never get staff rights.
    user.is_staff = user.is_superuser = is_platform and Role.PLATFORM_ADMIN in identity.roles
    user.save()
    return user
