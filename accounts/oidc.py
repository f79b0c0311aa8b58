"""OpenID Connect sign-in on top of mozilla-django-oidc.

Differences from the library's defaults, each on purpose:
- users are matched on (issuer, subject), not e-mail;
- the ID token's issuer and audience are checked (the library only checks signature, expiry and nonce);
- the tenant comes from the verified ID token and must equal the tenant of the request's domain.
"""

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.actions import do_sync_user_from_identity
from accounts.identity import IdentityRejected, check_identity_allowed_on_tenant, identity_from_claims
from accounts.models import User
from accounts.security import notify_security_event, refused_identity_details

LOGIN_FAILURE_REASON_KEY = "login_failure_reason"


class TenantOIDCBackend(OIDCAuthenticationBackend):
    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if payload.get("iss", "").rstrip("/") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("ID token issued by an unexpected issuer.")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token issued for another client.")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User | None:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("Userinfo subject differs from the ID token's subject.")
        # Anything that decides access comes from the signed ID token; userinfo only fills in gaps.
        identity = identity_from_claims({**userinfo, **payload})
        tenant = self.request.tenant
        try:
            check_identity_allowed_on_tenant(
                identity, tenant.schema_name, public_schema=get_public_schema_name()
            )
        except IdentityRejected as rejection:
            details, ops_only = refused_identity_details(
                self.request, claimed_tenant=identity.tenant, issuer=identity.issuer, subject=identity.subject
            )
            notify_security_event(self.request, "security.sign_in_refused", ops_only=ops_only, **details)
            self.request.session[LOGIN_FAILURE_REASON_KEY] = str(rejection)
            return None
        return do_sync_user_from_identity(identity, is_platform=tenant.is_platform)


def provider_logout_url(request: HttpRequest) -> str:
    """Where to send the browser so the identity provider ends its session too (RP-initiated logout)."""
    params = {
        "post_logout_redirect_uri": request.build_absolute_uri("/"),
        "client_id": settings.OIDC_RP_CLIENT_ID,
    }
    id_token = request.session.get("oidc_id_token")
    if id_token:
        params["id_token_hint"] = id_token
    return f"{settings.OIDC_OP_END_SESSION_ENDPOINT}?{urlencode(params)}"
