from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.shortcuts import render
from oauth2_provider.exceptions import (
    InvalidIDTokenError,
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
    OAuthToolkitError,
)
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView, RPInitiatedLogoutView
from oauthlib.openid.connect.core.exceptions import LoginRequired

from devtools.idp import bootstrap
from devtools.idp.tenant_hosts import is_tenant_home


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password.",
    }


class IdpLoginView(LoginView):
    template_name = "idp/login.html"
    authentication_form = LoginForm

    def dispatch(self, request, *args, **kwargs):
        # Users added to the file since the start (e.g. for a newly onboarded tenant) can sign in at once.
        bootstrap.sync_users_if_changed(settings.IDP_USERS_FILE)
        return super().dispatch(request, *args, **kwargs)


class IdpAuthorizationView(AuthorizationView):
    # Every client is first-party (skip_authorization), so this template only ever
    # shows errors that cannot be redirected back to the client.
    template_name = "idp/error.html"

    def handle_no_permission(self):
        # Validate before sending the browser to the login page, so a misconfigured
        # client (missing PKCE, unregistered redirect URI) fails at once, not after a login.
        try:
            _scopes, credentials = self.validate_authorization_request(self.request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        if "none" in self.request.GET.get("prompt", "").split():
            # A silent request (e.g. a session refresh) must never be shown a login page.
            error = LoginRequired(state=credentials.get("state"))
            return self.error_response(
                OAuthToolkitError(error=error, redirect_uri=credentials["redirect_uri"]), application=None
            )
        return super().handle_no_permission()


class IdpLogoutView(RPInitiatedLogoutView):
    template_name = "idp/error.html"

    def validate_logout_request_user(self, id_token_hint, client_id):
        try:
            return super().validate_logout_request_user(id_token_hint, client_id)
        except InvalidIDTokenError:
            # Logout revokes the user's tokens and the data dir may have been wiped, so a
            # relying party can hold a hint this provider no longer knows. With client_id
            # the client is still identified and its post-logout URI still checked.
            if not client_id:
                raise
            return None

    def validate_post_logout_redirect_uri(self, application, post_logout_redirect_uri):
        try:
            super().validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        except InvalidOIDCRedirectURIError:
            # Development: the home page of a tenant host of --tenant-hosts.
            if not is_tenant_home(post_logout_redirect_uri):
                raise

    def get_request_application(self, id_token, client_id):
        try:
            return super().get_request_application(id_token, client_id)
        except get_application_model().DoesNotExist:
            raise InvalidOIDCClientError() from None

    def must_prompt(self, token_user):
        # Development provider: end the session right away instead of asking the user
        # to confirm; id_token_hint and post_logout_redirect_uri are still validated.
        return False

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        response = super().do_logout(application, post_logout_redirect_uri, state, token_user)
        if post_logout_redirect_uri:
            return response
        return render(self.request, "idp/signed_out.html")


def home(request):
    return render(request, "idp/signed_out.html")
