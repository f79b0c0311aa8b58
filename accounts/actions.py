"""State changes for people: created or refreshed from their identity at sign-in."""

from django.db import transaction

from accounts.identity import Identity
from accounts.models import Role, User
from audit.actions import do_record_audit_event


@transaction.atomic
def do_sync_user_from_identity(identity: Identity, *, is_platform: bool) -> User:
    """Find the user by (issuer, subject) in the current schema, create it if new, mirror claims."""
    user = User.objects.select_for_update().filter(issuer=identity.issuer, subject=identity.subject).first()
    is_new = user is None
    if user is None:
        user = User(issuer=identity.issuer, subject=identity.subject, username=identity.username)
        user.set_unusable_password()
    previous_roles = [] if is_new else list(user.roles)
    user.email = identity.email
    user.display_name = identity.name
    user.roles = list(identity.roles)
    # Django admin is the platform console; tenant members never get staff rights.
    user.is_staff = user.is_superuser = is_platform and Role.PLATFORM_ADMIN in identity.roles
    user.save()
    if not is_platform and (is_new or sorted(previous_roles) != sorted(user.roles)):
        # Membership is decided at the identity provider; the tenant's audit chain records what we saw.
        do_record_audit_event(
            kind="member.joined" if is_new else "member.roles_changed",
            actor=user,
            details={
                "subject": user.subject,
                "roles": sorted(user.roles),
                "previous_roles": sorted(previous_roles),
            },
        )
    return user
