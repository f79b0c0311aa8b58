"""The public status page of the platform: no sign-in, no tenant data — models, their state now and over the
last day, and the platform's public notes. Served on the platform domain (/status/)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.access import public_view
from incidents.status import status_page_context, sync_model_statuses


@require_GET
@public_view
def status_page(request: HttpRequest) -> HttpResponse:
    # Half-open is a matter of time: the page brings the record up to date (at most every 2 s for everyone).
    sync_model_statuses(throttle=True)
    response = render(request, "incidents/status_page.html", status_page_context())
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
@public_view
def status_json(request: HttpRequest) -> JsonResponse:
    sync_model_statuses(throttle=True)
    context = status_page_context()
    models = context["models"]
    return JsonResponse(
        {
            "overall": context["overall"],
            "checked_at": context["checked_at"].isoformat(),  # type: ignore[attr-defined]
            "models": [
                {
                    "model": model.alias,
                    "provider": model.provider,
                    "state": model.state,
                    "since": model.since.isoformat(),
                    "note": model.note,
                    "history": [{"start": b.start.isoformat(), "state": b.state} for b in model.history],
                }
                for model in models  # type: ignore[attr-defined]
            ],
        }
    )
