"""Who is calling the tenant API, and the gate every /v1/ view goes through.

Two kinds of credentials, both sent as `Authorization: Bearer ...`:
- a tenant API key (cs-<tenant>.<prefix>.<secret>), stored hashed in the tenant's schema;
- an OIDC access token: a JWT signed by the identity provider (RS256, checked against its JWKS), issued for
  settings.OIDC_API_AUDIENCE, unexpired, whose tenant claim equals the domain's tenant and whose roles give
  access to the tenant (the same rule as browser sign-in).
The tenant always comes from the domain (request.tenant); a credential can only confirm it, never choose it.
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django_tenants.utils import get_public_schema_name

from accounts.identity import IdentityRejected, check_identity_allowed_on_tenant, identity_from_claims
from accounts.models import User
from accounts.security import notify_security_event, refused_identity_details
from gateway.api.actions import ApiKeyExpired, ApiKeyRevoked, authenticate_api_key, parse_key
from gateway.policy import KeyLimits
from tenants.models import Tenant

logger = logging.getLogger(__name__)

API_ACCESS_RULE = "api"
ViewFunc = Callable[..., HttpResponseBase]


def openai_error(
    status: int, message: str, *, error_type: str, code: str | None = None, param: str | None = None
) -> JsonResponse:
    """An error in the shape OpenAI's API (and so its clients) use."""
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="convosuite-api"'
    return response


@dataclass(frozen=True)
class ApiCaller:
    kind: str  # "api_key" or "oidc"
    # For logs and records: "key <prefix>" or "token <client or subject>"; never a secret.
    label: str
    user_id: int | None
    # Model aliases this credential may use; None: whatever the tenant allows.
    model_scope: frozenset[str] | None
    # An API key's own limits, reserved with the tenant's on every call (None for access tokens).
    key_limits: KeyLimits | None = None

    @property
    def source(self) -> str:
        """ModelCall.source of this caller's calls: `key:<prefix>` for an API key (the console shows
        the key's name), `api` for an access token (the record names its user)."""
        return self.key_limits.source if self.key_limits is not None else "api"


class ApiAuthFailed(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def response(self) -> JsonResponse:
        error_type = "authentication_error" if self.status == 401 else "permission_error"
        return openai_error(self.status, self.message, error_type=error_type, code=self.code)


@functools.cache
def _jwks_client(jwks_url: str) -> jwt.PyJWKClient:
    # Keys are cached and refetched when a token names an unknown key id (key rotation).
    return jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=settings.OIDC_TIMEOUT)


def verify_access_token(token: str) -> dict[str, Any]:
    """The verified claims of an OIDC access token, or ApiAuthFailed(401)."""
    try:
        signing_key = _jwks_client(settings.OIDC_OP_JWKS_ENDPOINT).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=settings.OIDC_API_AUDIENCE,
            issuer=settings.OIDC_ISSUER,
            leeway=30,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise ApiAuthFailed(401, "The access token has expired.", "invalid_token") from None
    except jwt.PyJWKClientConnectionError:
        logger.warning("tenant API cannot reach the identity provider's JWKS")
        raise ApiAuthFailed(
            401, "The access token could not be verified right now.", "invalid_token"
        ) from None
    except jwt.PyJWTError as failure:
        raise ApiAuthFailed(401, f"Invalid access token: {failure}.", "invalid_token") from None
    return claims


def _caller_from_token(request: HttpRequest, token: str, tenant: Tenant) -> ApiCaller:
    claims = verify_access_token(token)
    identity = identity_from_claims(claims)
    try:
        check_identity_allowed_on_tenant(identity, tenant.schema_name, public_schema=get_public_schema_name())
    except IdentityRejected as rejection:
        details, ops_only = refused_identity_details(
            request, claimed_tenant=identity.tenant, issuer=identity.issuer, subject=identity.subject
        )
        notify_security_event(request, "security.api_token_refused", ops_only=ops_only, **details)
        raise ApiAuthFailed(403, str(rejection), "wrong_tenant") from None
    user = User.objects.filter(issuer=identity.issuer, subject=identity.subject).only("pk").first()
    client = str(claims.get("client_id") or identity.subject)
    return ApiCaller(
        kind="oidc", label=f"token {client}", user_id=user.pk if user else None, model_scope=None
    )


def _caller_from_key(request: HttpRequest, key: str, tenant: Tenant) -> ApiCaller:
    parsed = parse_key(key)
    if parsed is not None and parsed.tenant_slug != tenant.schema_name:
        # The prefix names a tenant (or is made up): the tenant here learns only that it is not its own.
        notify_security_event(
            request,
            "security.api_key_wrong_tenant",
            origin="another organisation",
            ops_only={"key_tenant": parsed.tenant_slug[:63]},
        )
        raise ApiAuthFailed(403, "This API key belongs to another organisation.", "wrong_tenant")
    try:
        api_key = authenticate_api_key(key)
    except ApiKeyRevoked:
        raise ApiAuthFailed(401, "This API key has been revoked.", "invalid_api_key") from None
    except ApiKeyExpired:
        raise ApiAuthFailed(401, "This API key has expired.", "invalid_api_key") from None
    if api_key is None:
        raise ApiAuthFailed(401, "Incorrect API key provided.", "invalid_api_key")
    scope = frozenset(api_key.model_scope) if api_key.model_scope else None
    limits = KeyLimits(
        prefix=api_key.prefix,
        daily_tokens=api_key.daily_token_budget,
        requests_per_minute=api_key.requests_per_minute,
    )
    return ApiCaller(
        kind="api_key", label=f"key {api_key.prefix}", user_id=None, model_scope=scope, key_limits=limits
    )


def authenticate_caller(request: HttpRequest, tenant: Tenant) -> ApiCaller:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise ApiAuthFailed(
            401,
            "Missing credentials: send an API key or an access token as 'Authorization: Bearer <credential>'.",
            "missing_credentials",
        )
    if parse_key(credential) is not None:
        return _caller_from_key(request, credential, tenant)
    if credential.count(".") == 2:
        return _caller_from_token(request, credential, tenant)
    raise ApiAuthFailed(401, "Incorrect API key provided.", "invalid_api_key")


def api_view(view: ViewFunc) -> ViewFunc:
    """The gate for every tenant API view: a customer tenant's domain, an active tenant, a valid credential
    for that tenant. Sets request.api_caller. CSRF does not apply: no cookie authenticates these requests."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        tenant: Tenant | None = getattr(request, "tenant", None)
        if tenant is None or tenant.is_platform:
            return openai_error(404, "There is no API on this address.", error_type="invalid_request_error")
        if tenant.status != Tenant.Status.ACTIVE:
            return openai_error(
                403,
                "This organisation's access is suspended.",
                error_type="permission_error",
                code="tenant_disabled",
            )
        try:
            request.api_caller = authenticate_caller(request, tenant)  # type: ignore[attr-defined]
        except ApiAuthFailed as failure:
            return failure.response()
        return view(request, *args, **kwargs)

    wrapped.tenant_access = API_ACCESS_RULE  # type: ignore[attr-defined]
    return csrf_exempt(wrapped)
