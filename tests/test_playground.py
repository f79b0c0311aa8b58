"""Prompts: a new template is not live until the admin says so, publishing says which version the chat uses,
and the playground runs versions side by side through a real Celery worker and the gateway (recorded and
budgeted like any call)."""

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from devtools.llm_simulator.testing import SimulatorControl
from gateway import screening
from gateway.actions import do_set_model_allow_list
from gateway.models import ModelCall
from prompts.actions import VersionDraft, do_create_prompt_template, do_publish_prompt_version
from prompts.models import PRODUCTION, PlaygroundRun, PromptTemplate
from prompts.tasks import run_playground_call
from tenants.models import Tenant
from tenants.task_context import TenantContextMissing
from tests.conftest import client_for, make_member


def admin_of(tenant: Tenant) -> User:
    return make_member(tenant, roles=[Role.TENANT_ADMIN.value, Role.END_USER.value], display_name="Ada Admin")


def draft(body: str, **fields: Any) -> VersionDraft:
    values: dict[str, Any] = {"model": "sim-model", "temperature": Decimal("0.70"), "max_tokens": 64, **fields}
    return VersionDraft(body=body, **values)


def create_form(name: str, **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "description": "Trips",
        "body": "You are the travel desk of $company.",
        "variables": "company = Acme Travel",
        "model": "sim-model",
        "temperature": "0.70",
        "max_tokens": "64",
        "message": "First",
        **extra,
    }


@pytest.mark.django_db
def test_a_new_template_is_not_live_until_the_admin_says_so(acme: Tenant) -> None:
    client = client_for(acme, admin_of(acme))
    name = f"Travel {uuid.uuid4().hex[:6]}"
    form = client.get("/console/prompts/new/").content.decode()
    assert 'name="make_production" id="make-production" >' in form  # unticked by default
    response = client.post("/console/prompts/new/", create_form(name), follow=True)
    body = response.content.decode()
    assert f"Created {name} with version 1. It is not in the chat yet" in body
    assert "Not offered in the chat" in body
    with tenant_context(acme):
        assert not PromptTemplate.objects.get(name=name).labels.exists()
    live_name = f"Live {uuid.uuid4().hex[:6]}"
    response = client.post("/console/prompts/new/", create_form(live_name, make_production="on"), follow=True)
    assert f"Created {live_name}: version 1 is in the chat now." in response.content.decode()


@pytest.mark.django_db
def test_publishing_says_which_version_the_chat_uses_in_the_pages_words(acme: Tenant) -> None:
    admin = admin_of(acme)
    client = client_for(acme, admin)
    with tenant_context(acme):
        template = do_create_prompt_template(
            name=f"Desk {uuid.uuid4().hex[:6]}", description="", draft=draft("First."), acting_user=admin,
            labels=(PRODUCTION,),
        )  # fmt: skip
    edit = f"/console/prompts/{template.id}/edit/"
    fields = {"body": "Second.", "model": "sim-model", "temperature": "0.7", "max_tokens": "64"}
    body = client.post(edit, fields, follow=True).content.decode()
    assert "Published version 2. The chat still uses version 1 until you make version 2 production" in body
    assert "The chat uses <strong id=\"production-version\">version 1</strong>; version 2 is newer" in body
    body = client.post(edit, {**fields, "body": "Third.", "labels": "production"}, follow=True).content.decode()
    assert "Published version 3: the chat uses it from the next message." in body
    assert 'id="production-version">version 3</strong>' in body


def wait_for_calls(acme: Tenant, batch: str, count: int, wait_for: Any) -> list[ModelCall]:
    def finished() -> list[ModelCall] | None:
        with tenant_context(acme):
            ids = list(PlaygroundRun.objects.filter(batch=batch).values_list("request_id", flat=True))
            calls = list(ModelCall.objects.filter(request_id__in=ids).exclude(status=ModelCall.Status.STARTED))
        return calls if len(calls) == count else None

    return wait_for(finished, timeout=30, message="the playground's model calls")  # type: ignore[no-any-return]


@pytest.mark.usefixtures("committed_db", "worker")
def test_playground_runs_a_draft_and_production_side_by_side_through_the_gateway(
    acme: Tenant, sim: SimulatorControl, wait_for: Any
) -> None:
    sim.set_scenario(reply_mode="echo")
    admin = admin_of(acme)
    client = client_for(acme, admin)
    with tenant_context(acme):
        template = do_create_prompt_template(
            name=f"Desk {uuid.uuid4().hex[:6]}", description="",
            draft=draft("Production desk of $company for $user_name.", variables={"company": "Acme"}),
            acting_user=admin, labels=(PRODUCTION,),
        )  # fmt: skip
        do_publish_prompt_version(
            template, draft("Draft desk of $company. Be brief.", variables={"company": "Acme"}), acting_user=admin
        )
        # A second chat model to compare on (committed_db puts acme's policy back afterwards).
        do_set_model_allow_list(allowed_models=["sim-model", "sim-fallback", "sim-embedding"], default_model=None)
    page = client.get(f"/console/prompts/{template.id}/playground/").content.decode()
    # The draft is tried against production by default, with the variables both bodies use.
    assert '<option value="2" selected>v2</option>' in page
    assert '<option value="1" selected>v1 (production)</option>' in page
    assert 'name="var_company" value="Acme"' in page and 'name="var_user_name" value="Ada Admin"' in page

    response = client.post(
        f"/console/prompts/{template.id}/playground/run/",
        {"version": "2", "model": "sim-model", "compare": "1", "compare_model": "sim-fallback",
         "var_company": "Globetrotters", "var_user_name": "Sam", "message": "Can I book a train?"},
    )  # fmt: skip
    assert response.status_code == 303
    batch = response["Location"].split("batch=")[1]
    calls = wait_for_calls(acme, batch, 2, wait_for)
    by_model = {call.model_requested: call for call in calls}
    # Each side is a real, recorded gateway call, made by the admin, marked as the playground's.
    assert set(by_model) == {"sim-model", "sim-fallback"}
    assert all(call.status == ModelCall.Status.OK and call.source == "playground" for call in calls)
    assert all(call.user_id == admin.pk and call.record_hash for call in calls)
    with tenant_context(acme):
        draft_call = ModelCall.objects.get(pk=by_model["sim-model"].pk)
    # What the model got is what the chat would send: the filled system prompt with the tenant's canary
    # note (gateway.screening), then the message. The record keeps the texts without the marker itself.
    sent = {
        request["body"]["model"]: request["body"]["messages"]
        for request in sim.requests()
        if request["path"] == "/v1/chat/completions"
    }
    system, user_message = sent["sim-model"]
    assert screening.CANARY_PREFIX in system["content"]
    assert screening.unplant(system["content"]) == "Draft desk of Globetrotters. Be brief."
    assert user_message == {"role": "user", "content": "Can I book a train?"}
    assert screening.unplant(sent["sim-fallback"][0]["content"]) == "Production desk of Globetrotters for Sam."
    assert draft_call.messages[1] == user_message
    assert draft_call.messages[0]["content"].startswith("Draft desk of Globetrotters. Be brief.")
    # Budgeted like any call: the tenant's counters include both.
    results = client.get(f"/console/prompts/{template.id}/playground/runs/{batch}/").content.decode()
    assert results.count("data-status=\"ok\"") == 2 and "hx-get" not in results
    assert "Echo: Can I book a train?" in results and "Make v2 production" in results
    # Reloading the comparison's page shows it again and calls nothing more.
    again = client.get(response["Location"])
    assert again.status_code == 200 and "Echo: Can I book a train?" in again.content.decode()
    with tenant_context(acme):
        assert ModelCall.objects.filter(source="playground", user=admin).count() == 2
        assert PromptTemplate.objects.get(pk=template.pk).labels.get(name=PRODUCTION).version.number == 1


@pytest.mark.usefixtures("committed_db", "worker")
def test_playground_refusals_are_shown_with_the_gateways_reason(
    acme: Tenant, sim: SimulatorControl, wait_for: Any
) -> None:
    admin = admin_of(acme)
    client = client_for(acme, admin)
    with tenant_context(acme):
        template = do_create_prompt_template(
            name=f"Desk {uuid.uuid4().hex[:6]}", description="", draft=draft("Hello."), acting_user=admin
        )
    run = f"/console/prompts/{template.id}/playground/run/"
    outside = client.post(run, {"version": "1", "model": "sim-unpriced", "message": "Hi"})
    assert outside.status_code == 400
    assert "The model &#x27;sim-unpriced&#x27; is not allowed for chat here." in outside.content.decode()
    empty = client.post(run, {"version": "1", "model": "sim-model", "message": "  "})
    assert empty.status_code == 400 and "Write a test message" in empty.content.decode()
    sim.set_scenario(fail="500")
    response = client.post(run, {"version": "1", "model": "sim-model", "message": "Hi"})
    batch = response["Location"].split("batch=")[1]
    (call,) = wait_for_calls(acme, batch, 1, wait_for)
    assert call.status == ModelCall.Status.ERROR
    results = client.get(f"/console/prompts/{template.id}/playground/runs/{batch}/").content.decode()
    assert 'data-status="failed"' in results and "notice--error" in results


@pytest.mark.django_db
def test_playground_is_for_this_tenants_admins_only(acme: Tenant, globex: Tenant) -> None:
    admin = admin_of(acme)
    with tenant_context(acme):
        template = do_create_prompt_template(
            name=f"Desk {uuid.uuid4().hex[:6]}", description="", draft=draft("Hello."), acting_user=admin
        )
        run = PlaygroundRun.objects.create(
            batch=uuid.uuid4(), side="candidate", template=template, version=template.versions.get(),
            model="sim-model", user_message="hi", created_by=admin,
        )  # fmt: skip
    user = client_for(acme, make_member(acme, roles=[Role.END_USER.value]))
    assert user.get(f"/console/prompts/{template.id}/playground/").status_code == 404
    other = client_for(globex, make_member(globex, roles=[Role.TENANT_ADMIN.value]))
    assert other.get(f"/console/prompts/{template.id}/playground/").status_code == 404
    mine = client_for(acme, admin)
    assert mine.get(f"/console/prompts/{template.id}/playground/runs/{uuid.uuid4()}/").status_code == 404
    assert mine.get(f"/console/prompts/{template.id}/playground/runs/{run.batch}/").status_code == 200


@pytest.mark.django_db
def test_playground_task_refuses_to_run_without_a_tenant(acme: Tenant) -> None:
    with pytest.raises(TenantContextMissing):
        run_playground_call("acme", str(uuid.uuid4()))
