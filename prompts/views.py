"""Console pages for prompt templates. Tenant admins only; anyone else gets 404 (tenant_view)."""

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import tenant_view
from accounts.models import Role
from accounts.requests import TenantRequest
from gateway.config import is_offered, model_max_tokens
from gateway.errors import CrossTenantBlocked
from knowledge.models import KnowledgeBase
from prompts.actions import (
    STANDARD_LABELS,
    PromptError,
    VersionDraft,
    access_template_by_id,
    access_version_by_number,
    do_create_prompt_template,
    do_move_label,
    do_publish_prompt_version,
    do_remove_label,
    do_update_template_details,
    labels_by_version,
    offered_models,
    parse_decimal,
    parse_int,
    parse_knowledge_base_ids,
    production_version,
    template_history,
    templates_for_console,
)
from prompts.diff import diff_versions
from prompts.models import PRODUCTION, PromptVersion
from prompts.transfer import MAX_UPLOAD_BYTES, ImportRejected, do_export_prompts, do_import_prompts
from prompts.variables import (
    RUNTIME_VARIABLES,
    PromptVariableError,
    format_variables_text,
    parse_variables_text,
)

VERSIONS_PER_PAGE = 25
TEMPLATES_PER_PAGE = 50
admin_view = tenant_view(roles=[Role.TENANT_ADMIN], hide_from_other_roles=True)


def _draft_from_post(request: TenantRequest) -> VersionDraft:
    post = request.POST
    try:
        variables = parse_variables_text(post.get("variables", ""))
    except PromptVariableError as problem:
        raise PromptError(str(problem)) from None
    return VersionDraft(
        body=post.get("body", "").replace("\r\n", "\n"),
        model=post.get("model", ""),
        temperature=parse_decimal(post.get("temperature", ""), "Temperature"),
        max_tokens=parse_int(post.get("max_tokens", ""), "Max tokens"),
        variables=variables,
        # Checkboxes of the knowledge-base picker (several values) or one comma-separated text.
        knowledge_base_ids=parse_knowledge_base_ids(",".join(post.getlist("knowledge_base_ids"))),
        message=post.get("message", ""),
    )


def _form_values_from_version(version: PromptVersion | None) -> dict[str, Any]:
    default_model = settings.GATEWAY_DEFAULT_MODEL
    if version is None:
        return {
            "body": "",
            "model": default_model,
            "temperature": "0.70",
            "max_tokens": str(model_max_tokens(default_model) if is_offered(default_model) else 256),
            "variables": "",
            "knowledge_base_ids": "",
            "message": "",
        }
    return {
        "body": version.body,
        "model": version.model,
        "temperature": str(version.temperature),
        "max_tokens": str(version.max_tokens),
        "variables": format_variables_text(version.variables),
        "knowledge_base_ids": ", ".join(str(kb) for kb in version.knowledge_base_ids),
        "message": "",
    }


def _form_context(**extra: Any) -> dict[str, Any]:
    return {
        "models": offered_models(),
        "knowledge_bases": list(KnowledgeBase.objects.order_by("name")),
        "runtime_variables": RUNTIME_VARIABLES,
        "console_section": "prompts",
        **extra,
    }


def publish_message(version: PromptVersion, labels: list[str]) -> str:
    """What publishing did, in the same words as the template's page: which version the chat uses now."""
    if PRODUCTION in labels:
        return f"Published version {version.number}: the chat uses it from the next message."
    others = [label for label in labels if label != PRODUCTION]
    labelled = f" and labelled it {', '.join(others)}" if others else ""
    live = production_version(version.template_id)
    if live is None:
        return (
            f"Published version {version.number}{labelled}. It is not in the chat: no version is production yet."
        )
    return (
        f"Published version {version.number}{labelled}. The chat still uses version {live.number} until you "
        f"make version {version.number} production (try it in the playground first)."
    )


@require_GET
@admin_view
def prompt_list(request: TenantRequest) -> HttpResponse:
    return render(request, "prompts/list.html", _list_context(request))


def _list_context(request: TenantRequest, **extra: Any) -> dict[str, Any]:
    page = Paginator(templates_for_console(), TEMPLATES_PER_PAGE).get_page(request.GET.get("page"))
    return {
        "templates": page.object_list,
        "page": page,
        "console_section": "prompts",
        "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        **extra,
    }


@require_http_methods(["GET", "POST"])
@admin_view
def prompt_create(request: TenantRequest) -> HttpResponse:
    values = _form_values_from_version(None)
    # Not live until the admin says so: a new template is tried in the playground first.
    values.update(name="", description="", make_production=False)
    error = ""
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in values}
        values["make_production"] = request.POST.get("make_production") == "on"
        try:
            template = do_create_prompt_template(
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                draft=_draft_from_post(request),
                acting_user=request.user,
                labels=(PRODUCTION,) if values["make_production"] else (),
            )
        except PromptError as problem:
            error = str(problem)
        else:
            if values["make_production"]:
                messages.success(request, f"Created {template.name}: version 1 is in the chat now.")
            else:
                messages.success(
                    request,
                    f"Created {template.name} with version 1. It is not in the chat yet: try it in the "
                    "playground, then make a version production.",
                )
            return redirect("prompts:detail", template_id=template.id)
    status = 400 if error else 200
    return render(
        request, "prompts/form.html", _form_context(values=values, error=error, creating=True), status=status
    )


@require_http_methods(["GET", "POST"])
@admin_view
def prompt_edit(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    versions = list(template.versions.all())
    base = versions[0] if versions else None
    if request.GET.get("from", "").isdigit():
        base = access_version_by_number(template, int(request.GET["from"]))
    values = _form_values_from_version(base)
    values["labels"] = []
    error = ""
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in values}
        values["labels"] = [label for label in request.POST.getlist("labels") if label in STANDARD_LABELS]
        try:
            version = do_publish_prompt_version(
                template,
                _draft_from_post(request),
                acting_user=request.user,
                labels=values["labels"],
            )
        except PromptError as problem:
            error = str(problem)
        else:
            messages.success(request, publish_message(version, values["labels"]))
            return redirect("prompts:detail", template_id=template.id)
    return render(
        request,
        "prompts/form.html",
        _form_context(
            template=template,
            values=values,
            error=error,
            creating=False,
            base=base,
            standard_labels=STANDARD_LABELS,
        ),
        status=400 if error else 200,
    )


@require_GET
@admin_view
def prompt_detail(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    page = Paginator(template.versions.select_related("author"), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    by_version = labels_by_version(template)
    rows: list[dict[str, Any]] = [
        {"version": version, "labels": sorted(by_version.get(version.id, []))} for version in page.object_list
    ]
    production = production_version(template.id)
    latest_two = list(template.versions.order_by("-number")[:2])
    diff = diff_versions(latest_two[1], latest_two[0]) if len(latest_two) == 2 else None
    return render(
        request,
        "prompts/detail.html",
        {
            "template": template,
            "rows": rows,
            "page": page,
            "numbers": list(template.versions.values_list("number", flat=True)),
            "production": production,
            "latest_number": latest_two[0].number if latest_two else 0,
            "history": template_history(template),
            "diff": diff,
            "console_section": "prompts",
            "standard_labels": STANDARD_LABELS,
        },
    )


@require_POST
@admin_view
def template_details(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    try:
        do_update_template_details(
            template,
            name=request.POST.get("name", ""),
            description=request.POST.get("description", ""),
            acting_user=request.user,
        )
    except PromptError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, "Saved the name and description.")
    return redirect("prompts:detail", template_id=template.id)


@require_GET
@admin_view
def version_detail(request: TenantRequest, template_id: uuid.UUID, number: int) -> HttpResponse:
    template = access_template_by_id(template_id)
    version = access_version_by_number(template, number)
    return render(
        request,
        "prompts/version.html",
        {
            "template": template,
            "version": version,
            "labels": sorted(labels_by_version(template).get(version.id, [])),
            "variables": version.variables,
            "console_section": "prompts",
        },
    )


@require_GET
@admin_view
def version_diff(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    old_number, new_number = request.GET.get("old", ""), request.GET.get("new", "")
    if not (old_number.isdigit() and new_number.isdigit()):
        return HttpResponse(
            "Choose two versions to compare.", status=400, content_type="text/plain; charset=utf-8"
        )
    diff = diff_versions(
        access_version_by_number(template, int(old_number)),
        access_version_by_number(template, int(new_number)),
    )
    context = {"template": template, "diff": diff, "console_section": "prompts"}
    if request.htmx:
        return render(request, "prompts/_diff.html", context)
    versions = list(template.versions.values_list("number", flat=True))
    return render(request, "prompts/diff.html", {**context, "numbers": versions})


@require_POST
@admin_view
def label_move(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    number = request.POST.get("version", "")
    if not number.isdigit():
        messages.error(request, "Choose a version.")
        return redirect("prompts:detail", template_id=template.id)
    version = access_version_by_number(template, int(number))
    label = request.POST.get("label", "")
    reason = "rollback" if request.POST.get("reason") == "rollback" else ""
    try:
        moved = do_move_label(template, label, version, acting_user=request.user, reason=reason)
    except PromptError as problem:
        messages.error(request, str(problem))
    else:
        if moved is None:
            messages.info(request, f"{label} already points at version {version.number}.")
        elif reason == "rollback":
            messages.success(request, f"Rolled back: {label} is now version {version.number}.")
        else:
            messages.success(request, f"{label} now points at version {version.number}.")
    return redirect("prompts:detail", template_id=template.id)


@require_POST
@admin_view
def label_remove(request: TenantRequest, template_id: uuid.UUID) -> HttpResponse:
    template = access_template_by_id(template_id)
    label = request.POST.get("label", "")
    try:
        do_remove_label(template, label, acting_user=request.user)
    except PromptError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, f"Removed the label {label}.")
    return redirect("prompts:detail", template_id=template.id)


@require_POST
@admin_view
def export_prompts(request: TenantRequest) -> HttpResponse:
    try:
        data = do_export_prompts(acting_user=request.user, tenant_slug=request.tenant.schema_name)
    except CrossTenantBlocked as blocked:
        return HttpResponse(blocked.user_message, status=blocked.status_code, content_type="text/plain")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="prompts-{request.tenant.schema_name}-{stamp}.zip"'
    )
    return response


@require_POST
@admin_view
def import_prompts(request: TenantRequest) -> HttpResponse:
    upload = request.FILES.get("bundle")
    if upload is None:
        error = "Choose a zip file exported from ConvoSuite."
    elif upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        error = f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
    else:
        try:
            report = do_import_prompts(
                upload.read(MAX_UPLOAD_BYTES + 1),
                acting_user=request.user,
                filename=upload.name or "",
            )
        except ImportRejected as problem:
            error = str(problem)
        else:
            messages.success(
                request,
                f"Imported: {report.templates_created} new template(s), {report.templates_updated} updated, "
                f"{report.versions_added} version(s) added, {report.labels_moved} label move(s).",
            )
            return redirect("prompts:list")
    context = _list_context(request, import_error=f"Nothing was imported. {error}")
    return render(request, "prompts/list.html", context, status=400)
