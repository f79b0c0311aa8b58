from django.conf import settings
from oauth2_provider.oauth2_validators import OAuth2Validator

from devtools.idp.tenant_hosts import is_tenant_callback


class ClaimsValidator(OAuth2Validator):
    # Every claim is released for the bare "openid" scope: the relying party cannot
    # place a user in a tenant without tenant and roles, so they must not hinge on
    # which optional scopes it happened to request.
    oidc_claim_scope = None

    # Without a request argument DOT treats these as static claim *names*, which lets
    # the discovery document list them under claims_supported.
    def get_additional_claims(self):
        return {
            # Overrides DOT's default sub (the SQLite primary key, which is not stable).
            "sub": lambda request: request.user.sub,
            "email": lambda request: request.user.email,
            "email_verified": lambda request: True,
            "name": lambda request: request.user.name,
            "preferred_username": lambda request: request.user.username,
            settings.IDP_TENANT_CLAIM: lambda request: request.user.tenant,
            settings.IDP_ROLES_CLAIM: lambda request: list(request.user.roles),
        }

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        # The registered URIs, or (development) a tenant host of --tenant-hosts.
        if super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs):
            return True
        return is_tenant_callback(redirect_uri)

    # prompt=none: the authorization view only reaches the grant with a signed-in user
    # (anonymous silent requests get login_required there), and the one client is
    # first-party, so there is never a consent to ask for.
    def validate_silent_login(self, request):
        return True

    def validate_silent_authorization(self, request):
        return True
