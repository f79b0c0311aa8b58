"""The prompt playground: try a version of a template before it goes live, side by side with another
(production, by default), with sample variables and a test message, on a model the tenant allows.

Each side is a PlaygroundRun whose call goes through the gateway (gateway.complete) in a Celery task, like a
chat reply: the tenant's allow-list, kill switch, rate limits and budgets apply, and the call is recorded in
the model-call log (source "playground", made by the admin who ran it). The answer, tokens, cost and latency
are read back from that record.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from gateway import screening
from gateway.actions import access_gateway_policy
from gateway.config import CHAT_KIND, model_kind
from gateway.errors import GatewayError
from gateway.models import ModelCall
from gateway.service import complete
from prompts.models import PlaygroundRun, PromptTemplate, PromptVersion
from prompts.variables import RUNTIME_VARIABLES, placeholders, render_prompt
from tenants.context import current_schema
from tenants.task_context import send_tenant_task_on_commit

PLAYGROUND_SOURCE = "playground"
RUN_TASK = "prompts.run_playground_call"
MAX_MESSAGE_CHARS = 4000
MAX_SAMPLE_VALUE_CHARS = 2000


class PlaygroundError(ValueError):
    """Input the playground cannot run; the message is shown to the admin as is."""


def playground_models() -> list[str]:
    """The chat models the tenant allows: the playground offers nothing the chat could not use."""
    return [alias for alias in access_gateway_policy().allowed_models if model_kind(alias) == CHAT_KIND]


def sample_variable_names(*versions: PromptVersion) -> list[str]:
    """Every variable the versions' bodies use, runtime ones last (in their usual order)."""
    used: set[str] = set()
    for version in versions:
        used |= placeholders(version.body)
    own = sorted(used - set(RUNTIME_VARIABLES))
    return own + [name for name in RUNTIME_VARIABLES if name in used]


def default_samples(versions: list[PromptVersion], *, user: User, tenant_name: str) -> dict[str, str]:
    """What the form starts with: each version's own values (the first version given wins), and for the
    runtime variables what the chat would fill in for this admin today."""
    runtime = {
        "user_name": user.display_name or user.get_username(),
        "tenant_name": tenant_name,
        "today": timezone.localdate().isoformat(),
    }
    samples: dict[str, str] = {}
    for name in sample_variable_names(*versions):
        if name in RUNTIME_VARIABLES:
            samples[name] = runtime[name]
            continue
        samples[name] = next((str(v.variables[name]) for v in versions if name in (v.variables or {})), "")
    return samples


def system_prompt_for(version: PromptVersion, samples: dict[str, str]) -> str:
    """The version's system prompt filled with the samples (which override the version's own values)."""
    values = {**(version.variables or {})}
    values.update({name: value for name, value in samples.items() if name not in RUNTIME_VARIABLES})
    runtime = {name: value for name, value in samples.items() if name in RUNTIME_VARIABLES}
    return render_prompt(version.body, values, runtime)


@dataclass(frozen=True)
class Side:
    version: PromptVersion
    model: str


def _check_side(side: Side, template: PromptTemplate, allowed: list[str]) -> None:
    if side.version.template_id != template.pk:
        raise PlaygroundError("That version belongs to another template.")
    if side.model not in allowed:
        raise PlaygroundError(
            f"The model {side.model!r} is not allowed for chat here. Choose one of: {', '.join(allowed)}."
            if allowed
            else "No chat model is allowed: allow one under Models first."
        )


@transaction.atomic
def do_start_playground_runs(
    template: PromptTemplate,
    *,
    candidate: Side,
    baseline: Side | None,
    samples: dict[str, str],
    user_message: str,
    acting_user: User,
) -> uuid.UUID:
    """Record the runs of one comparison and send their calls to the workers once committed. Returns the
    batch id the page polls. Nothing is published or labelled: this only tries versions."""
    user_message = user_message.strip()
    if not user_message:
        raise PlaygroundError("Write a test message: it is what the person would send in the chat.")
    if len(user_message) > MAX_MESSAGE_CHARS:
        raise PlaygroundError(f"Test messages are limited to {MAX_MESSAGE_CHARS} characters.")
    if any(len(value) > MAX_SAMPLE_VALUE_CHARS for value in samples.values()):
        raise PlaygroundError(f"Sample values are limited to {MAX_SAMPLE_VALUE_CHARS} characters.")
    allowed = playground_models()
    sides = [(PlaygroundRun.Side.CANDIDATE, candidate)]
    if baseline is not None:
        sides.append((PlaygroundRun.Side.BASELINE, baseline))
    for _, side in sides:
        _check_side(side, template, allowed)
    batch = uuid.uuid4()
    for side_name, side in sides:
        run = PlaygroundRun.objects.create(
            batch=batch,
            side=side_name,
            template=template,
            version=side.version,
            model=side.model,
            variables=samples,
            user_message=user_message,
            created_by=acting_user,
        )
        send_tenant_task_on_commit(RUN_TASK, str(run.id))
    return batch


def do_run_playground_call(run_id: uuid.UUID) -> None:
    """The worker's side of one run: fill the prompt and call the model through the gateway. Idempotent:
    the run's request id makes a redelivered task return the recorded answer instead of calling again."""
    run = PlaygroundRun.objects.select_related("version").filter(id=run_id).first()
    if run is None or run.error:
        return
    try:
        system_prompt = system_prompt_for(run.version, dict(run.variables or {}))
    except (KeyError, ValueError) as problem:
        PlaygroundRun.objects.filter(id=run.id).update(
            error=f"The prompt could not be filled: {problem}"[:500]
        )
        return
    try:
        complete(
            tenant_schema=current_schema(),
            request_id=run.request_id,
            user_id=run.created_by_id,
            model=run.model,
            messages=[
                # Exactly what the chat sends: the system prompt with the tenant's canary marker.
                {"role": "system", "content": screening.plant(system_prompt, "prompt")},
                {"role": "user", "content": run.user_message},
            ],
            max_tokens=run.version.max_tokens,
            source=PLAYGROUND_SOURCE,
        )
    except GatewayError:
        # Refused or failed: the gateway recorded it with its reason, which the page shows.
        return


@dataclass(frozen=True)
class RunResult:
    run: PlaygroundRun
    call: ModelCall | None

    @property
    def finished(self) -> bool:
        if self.run.error:
            return True
        return self.call is not None and self.call.status != ModelCall.Status.STARTED

    @property
    def ok(self) -> bool:
        return self.call is not None and self.call.status == ModelCall.Status.OK

    @property
    def problem(self) -> str:
        if self.run.error:
            return self.run.error
        if self.call is not None and self.finished and not self.ok:
            return self.call.error or self.call.get_status_display()
        return ""


def access_playground_batch(template: PromptTemplate, batch: uuid.UUID) -> list[RunResult]:
    """The runs of one comparison of this template (candidate first) with their gateway records; 404 if
    there are none (another template's batch looks the same as a missing one)."""
    runs = list(
        PlaygroundRun.objects.filter(template=template, batch=batch)
        .select_related("version", "created_by")
        .order_by("side")
    )
    if not runs:
        raise Http404("No such playground run.")
    calls = {
        call.request_id: call
        for call in ModelCall.objects.filter(request_id__in=[run.request_id for run in runs])
    }
    results = [RunResult(run, calls.get(run.request_id)) for run in runs]
    # "candidate" sorts before "baseline" only by intent: put it first explicitly.
    return sorted(results, key=lambda result: result.run.side != PlaygroundRun.Side.CANDIDATE)


def recent_batches(template: PromptTemplate, limit: int = 10) -> list[dict[str, Any]]:
    """The template's last comparisons, newest first: when, who, which versions and models."""
    rows: dict[uuid.UUID, dict[str, Any]] = {}
    runs = (
        PlaygroundRun.objects.filter(template=template)
        .select_related("version", "created_by")
        .order_by("-created_at")[: limit * 2]
    )
    for run in runs:
        row = rows.setdefault(
            run.batch, {"batch": run.batch, "created_at": run.created_at, "by": run.created_by}
        )
        row[run.side] = run
    return list(rows.values())[:limit]

