"""Access tokens as RS256-signed JWTs (RFC 9068 profile), so a resource server (the tenant API) can verify
them against the JWKS alone, and read the tenant and roles claims without calling back.

django-oauth-toolkit calls the generator with the oauthlib request while it builds the token response.
Refresh tokens stay opaque (see REFRESH_TOKEN_GENERATOR in settings).
"""

import json
import time
import uuid

from django.conf import settings
from jwcrypto import jwk, jwt
from oauth2_provider.settings import oauth2_settings

from devtools.idp.models import ServiceClient


def _signing_key() -> jwk.JWK:
    return jwk.JWK.from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY.encode())


def _subject_claims(request) -> dict:
    """Who the token speaks for: the signed-in user, or for the client credentials grant the service
    client itself, with the tenant and roles it was configured with."""
    if request.grant_type == "client_credentials":
        service = ServiceClient.objects.filter(application=request.client).first()
        if service is None:
            # Only configured service clients have the grant; anything else is a configuration bug.
            raise RuntimeError(f"client {request.client.client_id} is not a configured service client")
        return {
            "sub": request.client.client_id,
            settings.IDP_TENANT_CLAIM: service.tenant,
            settings.IDP_ROLES_CLAIM: list(service.roles),
        }
    user = request.user
    return {
        "sub": user.sub,
        settings.IDP_TENANT_CLAIM: user.tenant,
        settings.IDP_ROLES_CLAIM: list(user.roles),
    }


def signed_access_token(request) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.ISSUER,
        "aud": settings.IDP_API_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS,
        "jti": uuid.uuid4().hex,
        "client_id": request.client.client_id,
        "scope": " ".join(request.scopes or []),
        **_subject_claims(request),
    }
    key = _signing_key()
    token = jwt.JWT(
        header={"alg": "RS256", "typ": "at+jwt", "kid": key.thumbprint()}, claims=json.dumps(claims)
    )
    token.make_signed_token(key)
    return token.serialize()
