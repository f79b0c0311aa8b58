"""Console pages of the prompt playground (tenant admins only; anyone else gets 404 like the other prompt
pages). Thin: parse the form, call prompts.playground, render."""

import uuid
from typing import Any

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.requests import TenantRequest
from gateway.actions import access_gateway_policy
from prompts.actions import access_template_by_id, access_version_by_number, production_version
from prompts.models import PromptTemplate, PromptVersion
from prompts.playground import (
    PlaygroundError,
    RunResult,
    Side,
    access_playground_batch,
    default_samples,
    do_start_playground_runs,
    playground_models,
    recent_batches,
    sample_variable_names,
    system_prompt_for,
)
from prompts.views import admin_view


def _version_param(template: PromptTemplate, value: str) -> PromptVersion | None:
    return access_version_by_number(template, int(value)) if value.isdigit() else None


def _model_for(version: PromptVersion | None, models: list[str], asked: str = "") -> str:
    if asked in models:
        return asked
    if version is not None and version.model in models:
        return version.model
    default = access_gateway_policy().default_model
    return default if default in models else (models[0] if models else "")


def _preview(version: PromptVersion | None, samples: dict[str, str]) -> str:
    if version is None:
        return ""
    try:
        return system_prompt_for(version, samples)
    except (KeyError, ValueError) as problem:
        return f"(cannot be filled: {problem})"


def _context(
    request: TenantRequest,
    template: PromptTemplate,
    *,
    candidate: PromptVersion,
    baseline: PromptVersion | None,
    candidate_model: str = "",
    baseline_model: str = "",
    samples: dict[str, str] | None = None,
    message: str = "",
    results: list[RunResult] | None = None,
    batch: uuid.UUID | None = None,
    error: str = "",
) -> dict[str, Any]:
    models = playground_models()
    versions = [version for version in (candidate, baseline) if version is not None]
    names = sample_variable_names(*versions)
    defaults = default_samples(versions, user=request.user, tenant_name=request.tenant.name)
    filled = {name: (samples or {}).get(name, defaults.get(name, "")) for name in names}
    return {
        "template": template,
        "numbers": list(template.versions.values_list("number", flat=True)),
        "production": production_version(template.id),
        "candidate": candidate,
        "baseline": baseline,
        "models": models,
        "candidate_model": _model_for(candidate, models, candidate_model),
        "baseline_model": _model_for(baseline, models, baseline_model),
        "samples": [(name, filled[name]) for name in names],
        "message": message,
        "candidate_preview": _preview(candidate, filled),
        "baseline_preview": _preview(baseline, filled),
        "results": results,
        "running": any(not result.finished for result in results or []),
        "batch": batch,
        "recent": recent_batches(template),
        "error": error,
        "console_section": "prompts",
    }


@require_GET
@admin_view
def playground(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    batch_text = request.GET.get("batch", "")
    if batch_text:
        try:
            batch = uuid.UUID(batch_text)
        except ValueError:
            batch = uuid.UUID(int=0)
        results = access_playground_batch(template, batch)
        candidate_run = results[0].run
        baseline_run = results[1].run if len(results) > 1 else None
        context = _context(
            request,
            template,
            candidate=candidate_run.version,
            baseline=baseline_run.version if baseline_run else None,
            candidate_model=candidate_run.model,
            baseline_model=baseline_run.model if baseline_run else "",
            samples=dict(candidate_run.variables or {}),
            message=candidate_run.user_message,
            results=results,
            batch=batch,
        )
        return render(request, "prompts/playground.html", context)
    latest = template.versions.order_by("-number").first()
    if latest is None:
        return redirect("prompts:detail", template_id=template.id)
    candidate = _version_param(template, request.GET.get("version", "")) or latest
    production = production_version(template.id)
    baseline = _version_param(template, request.GET.get("compare", ""))
    if baseline is None and production is not None and production.pk != candidate.pk:
        baseline = production
    return render(
        request,
        "prompts/playground.html",
        _context(request, template, candidate=candidate, baseline=baseline),
    )


@require_POST
@admin_view
def playground_run(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    post = request.POST
    candidate = _version_param(template, post.get("version", ""))
    baseline = _version_param(template, post.get("compare", ""))
    samples = {
        name.removeprefix("var_"): str(post.get(name, "")).replace("\r\n", "\n")
        for name in post
        if name.startswith("var_")
    }
    message = post.get("message", "")
    if candidate is None:
        latest = template.versions.order_by("-number").first()
        if latest is None:
            return redirect("prompts:detail", template_id=template.id)
        context = _context(request, template, candidate=latest, baseline=baseline, samples=samples, message=message,
                           error="Choose the version to try.")  # fmt: skip
        return render(request, "prompts/playground.html", context, status=400)
    try:
        batch = do_start_playground_runs(
            template,
            candidate=Side(candidate, post.get("model", "")),
            baseline=Side(baseline, post.get("compare_model", "")) if baseline is not None else None,
            samples=samples,
            user_message=message,
            acting_user=request.user,
        )
    except PlaygroundError as problem:
        context = _context(
            request, template, candidate=candidate, baseline=baseline, candidate_model=post.get("model", ""),
            baseline_model=post.get("compare_model", ""), samples=samples, message=message, error=str(problem),
        )  # fmt: skip
        return render(request, "prompts/playground.html", context, status=400)
    # 303 to the page of this comparison: reloading it shows the results, it never runs the calls again.
    url = f"{reverse('prompts:playground', kwargs={'template_id': template.id})}?batch={batch}"
    response = redirect(url)
    response.status_code = 303
    return response


@require_GET
@admin_view
def playground_results(request: TenantRequest, template_id: uuid.UUID, batch: uuid.UUID) -> HttpResponse:
    """The results of one comparison, polled by the page (htmx) until every side has finished."""
    template = access_template_by_id(template_id)
    results = access_playground_batch(template, batch)
    context = {
        "template": template,
        "results": results,
        "running": any(not result.finished for result in results),
        "batch": batch,
        "production": production_version(template.id),
    }
    return render(request, "prompts/_playground_results.html", context)
