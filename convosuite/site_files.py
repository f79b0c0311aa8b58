"""Addresses browsers ask for on every site, whatever the page links to."""

from django.http import HttpRequest, HttpResponseBase
from django.templatetags.static import static
from django.views.decorators.http import require_GET
from django.views.generic import RedirectView

from accounts.access import public_view

_to_favicon = RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)


@require_GET
@public_view
def favicon(request: HttpRequest) -> HttpResponseBase:
    """/favicon.ico: browsers request it for pages that do not link an icon (Django admin, JSON, errors)."""
    return _to_favicon(request)
