from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.access import public_view
from accounts.oidc import LOGIN_FAILURE_REASON_KEY

SIGNED_OUT_COOKIE = "signed_out"


@public_view
def login_failed(request: HttpRequest) -> HttpResponse:
    reason = request.session.pop(
        LOGIN_FAILURE_REASON_KEY, "The sign-in could not be completed. Please try again."
    )
    return render(request, "accounts/login_failed.html", {"reason": reason}, status=403)


@public_view
def tenant_root(request: HttpRequest) -> HttpResponse:
    """Signed-in people go to the chat; others to the identity provider, except right after signing out."""
    if request.user.is_authenticated:
        return redirect("chat:home")
    if request.COOKIES.get(SIGNED_OUT_COOKIE):
        response = render(request, "accounts/signed_out.html")
        response.delete_cookie(SIGNED_OUT_COOKIE)
        return response
    return redirect("oidc_authentication_init")


@public_view
def logout(request: HttpRequest) -> HttpResponse:
    """Ends the session here, then at the identity provider (RP-initiated logout)."""
    from mozilla_django_oidc.views import OIDCLogoutView

    response = OIDCLogoutView.as_view()(request)
    response.set_cookie(SIGNED_OUT_COOKIE, "1", max_age=300, httponly=True, samesite="Lax")
    return response
