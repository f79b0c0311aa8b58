"""Who may sign in where: the rules applied to a verified token, and users keyed on (issuer, subject)."""

import uuid

import pytest
from django_tenants.utils import tenant_context

from accounts.actions import do_sync_user_from_identity
from accounts.identity import IdentityRejected, check_identity_allowed_on_tenant, identity_from_claims
from accounts.models import User
from tenants.models import Tenant

ISSUER = "http://idp.test/o"


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISSUER,
        "sub": "alice-1",
        "email": "alice@example.test",
        "name": "Alice",
        "tenant": "acme",
        "roles": ["end_user"],
    }
    return {**base, **overrides}


def test_member_of_the_domains_tenant_is_allowed() -> None:
    check_identity_allowed_on_tenant(identity_from_claims(claims()), "acme", public_schema="public")


def test_token_for_another_tenant_is_refused() -> None:
    with pytest.raises(IdentityRejected, match="another organisation"):
        check_identity_allowed_on_tenant(identity_from_claims(claims()), "globex", public_schema="public")


def test_token_without_a_member_role_is_refused() -> None:
    with pytest.raises(IdentityRejected, match="no role"):
        check_identity_allowed_on_tenant(
            identity_from_claims(claims(roles=[])), "acme", public_schema="public"
        )


def test_unknown_roles_in_the_claim_are_ignored() -> None:
    identity = identity_from_claims(claims(roles=["end_user", "superuser", "root"]))
    assert identity.roles == ("end_user",)


def test_only_platform_staff_may_sign_in_on_the_platform_domain() -> None:
    with pytest.raises(IdentityRejected, match="platform staff"):
        check_identity_allowed_on_tenant(identity_from_claims(claims()), "public", public_schema="public")
    staff = identity_from_claims(claims(tenant="", roles=["platform_admin"]))
    check_identity_allowed_on_tenant(staff, "public", public_schema="public")


def test_platform_admin_without_membership_cannot_sign_in_to_a_tenant() -> None:
    staff = identity_from_claims(claims(tenant="", roles=["platform_admin"]))
    with pytest.raises(IdentityRejected):
        check_identity_allowed_on_tenant(staff, "acme", public_schema="public")


@pytest.mark.django_db
def test_users_are_keyed_on_issuer_and_subject_not_email(acme: Tenant, globex: Tenant) -> None:
    with tenant_context(acme):
        first = do_sync_user_from_identity(identity_from_claims(claims(sub="s-1")), is_platform=False)
        # Same e-mail, different subject: a different person.
        other = do_sync_user_from_identity(identity_from_claims(claims(sub="s-2")), is_platform=False)
        again = do_sync_user_from_identity(
            identity_from_claims(claims(sub="s-1", email="new@example.test", roles=["tenant_admin"])),
            is_platform=False,
        )
        assert first.pk == again.pk != other.pk
        again.refresh_from_db()
        assert again.email == "new@example.test"
        assert again.roles == ["tenant_admin"]
        assert not again.is_staff
    with tenant_context(globex):
        # The same identity in another tenant's schema is a separate row, never the acme one.
        assert not User.objects.filter(subject="s-1").exists()


@pytest.mark.django_db
def test_new_members_and_role_changes_are_audit_events(acme: Tenant) -> None:
    from audit.models import AuditEvent

    with tenant_context(acme):
        subject = f"s-{uuid.uuid4()}"
        do_sync_user_from_identity(identity_from_claims(claims(sub=subject)), is_platform=False)
        do_sync_user_from_identity(identity_from_claims(claims(sub=subject)), is_platform=False)  # no change
        do_sync_user_from_identity(
            identity_from_claims(claims(sub=subject, roles=["end_user", "tenant_admin"])), is_platform=False
        )
        events = list(AuditEvent.objects.filter(details__subject=subject).order_by("seq"))
    assert [event.kind for event in events] == ["member.joined", "member.roles_changed"]
    assert events[1].details["roles"] == ["end_user", "tenant_admin"]
    assert events[1].details["previous_roles"] == ["end_user"]
