"""The platform's public audit key, on every domain (platform and tenants)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from accounts.access import public_view
from evidence.signing import platform_key, published_keys


@require_GET
@public_view
def audit_public_key(request: HttpRequest) -> HttpResponse:
    """The active key as PEM: `curl .../.well-known/convosuite-audit-key > key.pem`."""
    response = HttpResponse(platform_key().public_key_pem, content_type="application/x-pem-file")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@public_view
def audit_public_keys(request: HttpRequest) -> HttpResponse:
    """Every key ever used (retired ones too), so old exports stay verifiable."""
    keys = [
        {
            "key_id": key.key_id,
            "algorithm": key.algorithm,
            "public_key_pem": key.public_key_pem,
            "created_at": key.created_at.isoformat(),
            "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        }
        for key in published_keys()
    ]
    response = JsonResponse({"keys": keys})
    response["Access-Control-Allow-Origin"] = "*"
    return response
