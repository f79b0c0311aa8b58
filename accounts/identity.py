"""What the application takes from a verified OIDC token, and the rules it must satisfy."""

import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import Role


class IdentityRejected(Exception):
    """The token was valid but does not entitle its holder to this domain. The message is user-facing."""


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    tenant: str
    roles: tuple[str, ...]
    email: str
    name: str

    @property
    def username(self) -> str:
        # Django needs a unique username; derive it from the identity so it never collides across issuers.
        return hashlib.sha256(f"{self.issuer}|{self.subject}".encode()).hexdigest()[:40]


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    roles_claim = claims.get(settings.OIDC_ROLES_CLAIM) or []
    if isinstance(roles_claim, str):
        roles_claim = roles_claim.split()
    known_roles = {role.value for role in Role}
    return Identity(
        issuer=str(claims.get("iss", "")),
        subject=str(claims.get("sub", "")),
        tenant=str(claims.get(settings.OIDC_TENANT_CLAIM) or ""),
        roles=tuple(role for role in roles_claim if role in known_roles),
        email=str(claims.get("email", "")),
        name=str(claims.get("name") or claims.get("preferred_username") or ""),
    )


def check_identity_allowed_on_tenant(identity: Identity, tenant_schema: str, *, public_schema: str) -> None:
    """The tenant in the token must be the tenant of the domain, and the roles must fit the domain."""
    if not identity.subject:
        raise IdentityRejected("The identity provider did not say who you are (no subject).")
    if tenant_schema == public_schema:
        if Role.PLATFORM_ADMIN not in identity.roles:
            raise IdentityRejected("Only platform staff can sign in here. Use your organisation's address.")
        return
    if identity.tenant != tenant_schema:
        raise IdentityRejected("Your account belongs to another organisation. Sign in at its own address.")
    if not ({Role.END_USER, Role.TENANT_ADMIN} & set(identity.roles)):
        raise IdentityRejected("Your account has no role in this organisation. Ask your administrator.")
