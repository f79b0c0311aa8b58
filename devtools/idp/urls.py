from django.conf import settings
from django.urls import include, path, re_path
from oauth2_provider import views as dot

from devtools.idp import views

# Only what an OIDC relying party needs; DOT's application-management and
# device-flow pages are deliberately not exposed.
oidc_patterns = [
    path("authorize/", views.IdpAuthorizationView.as_view(), name="authorize"),
    path("token/", dot.TokenView.as_view(), name="token"),
    path("userinfo/", dot.UserInfoView.as_view(), name="user-info"),
    path(".well-known/jwks.json", dot.JwksInfoView.as_view(), name="jwks-info"),
    re_path(
        r"^\.well-known/openid-configuration/?$",
        dot.ConnectDiscoveryInfoView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path("logout/", views.IdpLogoutView.as_view(), name="rp-initiated-logout"),
]

idp_patterns = [
    path("", views.home, name="home"),
    path("login/", views.IdpLoginView.as_view(), name="login"),
]

prefix = f"{settings.ISSUER_PATH_PREFIX}/" if settings.ISSUER_PATH_PREFIX else ""

urlpatterns = [
    # The namespace must stay "oauth2_provider": DOT reverses its own URL names.
    path(prefix, include((oidc_patterns, "oauth2_provider"))),
    path("", include((idp_patterns, "idp"))),
]
