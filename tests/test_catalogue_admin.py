"""The model catalogue and circuit breakers in the platform's Django admin: platform staff add and edit
models (validated, recorded), see and reset circuits; tenant sessions never reach it."""

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.test.utils import override_settings
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from catalogue.models import CatalogueChange, CatalogueEntry
from gateway import breaker
from gateway.config import announce_catalogue_change, catalogue_aliases, get_model_route
from tenants.models import Tenant
from tests.conftest import client_for, make_member

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/catalogue/catalogueentry/add/"
CIRCUITS_URL = "/admin/catalogue/catalogueentry/circuits/"
RESET_URL = "/admin/catalogue/catalogueentry/circuits/reset/"

VALID = {
    "alias": "sim-extra",
    "kind": "chat",
    "enabled": "on",
    "litellm_model": "openai/sim-extra",
    "provider": "simulator",
    "api_base": "http://127.0.0.1:9/v1",
    "api_key_env": "GATEWAY_SIMULATOR_KEY",
    "timeout_seconds": "5",
    "input_cost_per_token": "0.000003",
    "output_cost_per_token": "0.000006",
    "max_tokens": "64",
}


@pytest.fixture(autouse=True)
def _catalogue_reloaded_afterwards() -> Iterator[None]:
    """Edits here are rolled back with the test's transaction: no process may keep a catalogue read in it."""
    yield
    announce_catalogue_change()


@pytest.fixture
def staff(tenants: dict[str, Tenant]) -> User:
    return make_member(
        tenants["public"],
        email="ops@convosuite.test",
        roles=[Role.PLATFORM_ADMIN.value],
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def admin_client(tenants: dict[str, Tenant], staff: User) -> Client:
    return client_for(tenants["public"], staff)


def errors_of(response: Any) -> str:
    form = response.context["adminform"].form
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def test_platform_admin_adds_a_model_that_the_gateway_offers_at_once(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD_URL, VALID)
    assert response.status_code == 302, errors_of(response)
    entry = CatalogueEntry.objects.get(alias="sim-extra")
    assert (entry.provider, entry.max_tokens, entry.api_key_env) == ("simulator", 64, "GATEWAY_SIMULATOR_KEY")
    route = get_model_route("sim-extra")
    assert (str(route.input_cost_per_token), route.api_key) == ("0.000003000000", "sim-key")
    assert "sim-extra" in catalogue_aliases()
    (change,) = CatalogueChange.objects.filter(alias="sim-extra")
    assert (
        change.action == "added" and change.actor_label == "platform admin ops@convosuite.test (Django admin)"
    )
    assert change.changes["input_cost_per_token"] == ["", "0.000003"]
    assert LogEntry.objects.filter(object_repr="sim-extra", action_flag=1).exists()


def test_a_price_edit_is_recorded_with_before_and_after(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    entry = CatalogueEntry.objects.get(alias="sim-fallback")
    url = f"/admin/catalogue/catalogueentry/{entry.pk}/change/"
    form = admin_client.get(url)
    assert form.status_code == 200 and 'name="alias"' not in form.content.decode()  # never renamed
    fields = {name: value for name, value in VALID.items() if name != "alias"}
    fields.update(litellm_model=entry.litellm_model, provider=entry.provider, api_base=entry.api_base,
                  input_cost_per_token="0.000005", output_cost_per_token="0.000004", max_tokens="128")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, fields)
    assert response.status_code == 302, errors_of(response)
    change = CatalogueChange.objects.filter(alias="sim-fallback").latest("at")
    assert change.action == "changed" and "ops@convosuite.test" in change.actor_label
    assert change.changes["input_cost_per_token"] == ["0.000002", "0.000005"]
    assert "output_cost_per_token" not in change.changes  # unchanged fields are not listed
    assert str(get_model_route("sim-fallback").input_cost_per_token) == "0.000005000000"
    assert LogEntry.objects.filter(object_repr="sim-fallback", action_flag=2).exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_cost_per_token": "-0.000001"}, "A price cannot be negative."),
        ({"kind": "vision"}, "Select a valid choice. vision is not one of the available choices."),
        ({"alias": "Sim Extra!"}, "Use lower-case letters, digits, '.', '_' and '-'"),
        ({"api_key_env": "sk-live-0123456789"}, "never the key itself"),
        ({"output_cost_per_token": ""}, "Give both prices (input and output), or leave both blank"),
        (
            {"input_cost_per_token": "", "output_cost_per_token": ""},
            "LiteLLM's price map has no price for 'openai/sim-extra': enter the input and output price",
        ),
        ({"max_tokens": "0"}, "At least one token."),
        ({"alias": "sim-model"}, "Model with this Alias already exists."),
    ],
)
def test_the_admin_form_refuses_bad_entries_with_a_clear_error(
    admin_client: Client, changes: dict[str, str], message: str
) -> None:
    response = admin_client.post(ADD_URL, {**VALID, **changes})
    assert response.status_code == 200
    assert message in errors_of(response)
    assert not CatalogueEntry.objects.filter(alias__in=["sim-extra", "Sim Extra!"]).exists()
    assert not CatalogueChange.objects.filter(alias="sim-extra").exists()


def test_a_model_priced_by_litellm_needs_no_price_of_its_own(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    priced = {
        **VALID,
        "litellm_model": "gpt-4o-mini",
        "input_cost_per_token": "",
        "output_cost_per_token": "",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD_URL, priced)
    assert response.status_code == 302, errors_of(response)
    assert get_model_route("sim-extra").input_cost_per_token > 0  # from LiteLLM's bundled price map
    listing = admin_client.get("/admin/catalogue/catalogueentry/").content.decode()
    assert "(LiteLLM)" in listing


def test_entries_cannot_be_deleted_only_disabled(admin_client: Client) -> None:
    entry = CatalogueEntry.objects.get(alias="sim-fallback")
    assert admin_client.get(f"/admin/catalogue/catalogueentry/{entry.pk}/delete/").status_code == 403


def test_a_disabled_model_leaves_the_tenant_console_and_the_api_listing(
    acme: Tenant, admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    tenant_admin = make_member(acme, roles=[Role.TENANT_ADMIN.value])
    console = client_for(acme, tenant_admin)
    assert 'value="sim-fallback"' in console.get("/console/models/").content.decode()
    entry = CatalogueEntry.objects.get(alias="sim-fallback")
    fields = {name: value for name, value in VALID.items() if name not in {"alias", "enabled"}}
    fields.update(litellm_model=entry.litellm_model, api_base=entry.api_base)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/catalogue/catalogueentry/{entry.pk}/change/", fields)
    assert response.status_code == 302, errors_of(response)
    assert CatalogueChange.objects.filter(alias="sim-fallback").latest("at").changes["enabled"] == [
        "True",
        "False",
    ]
    page = console.get("/console/models/").content.decode()
    assert 'value="sim-fallback"' not in page and 'value="sim-model"' in page
    refused = console.post("/console/models/save/", {"allowed": ["sim-model", "sim-fallback"]})
    assert "'sim-fallback' is not in the platform's model catalogue" in html.unescape(
        refused.content.decode()
    )


def test_the_circuit_page_shows_each_breaker_and_resets_one_with_a_record(
    admin_client: Client, staff: User
) -> None:
    with override_settings(GATEWAY_BREAKER_THRESHOLD=1, GATEWAY_BREAKER_COOLDOWN_SECONDS=600):
        breaker.record_failure("sim-fallback", "InternalServerError: upstream said 503")
    try:
        page = admin_client.get(CIRCUITS_URL)
        assert page.status_code == 200
        html = page.content.decode()
        row = re.search(r'<tr id="circuit-sim-fallback">(.*?)</tr>', html, re.S)
        assert row is not None
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row.group(1), re.S)
        # Opening restarts the failure count (it counts towards the next opening).
        assert cells[0] == "sim-fallback" and "open" in cells[1] and cells[2:4] == ["0", "1"]
        assert "upstream said 503" in cells[4] and "UTC" in cells[5] and "UTC" in cells[6]
        assert '<tr id="circuit-sim-model">' in html and "Reset (close)" in row.group(1)

        strict = Client(enforce_csrf_checks=True, HTTP_HOST="localhost")
        strict.cookies = admin_client.cookies
        assert strict.post(RESET_URL, {"alias": "sim-fallback"}).status_code == 403  # no CSRF token
        assert breaker.states(["sim-fallback"])["sim-fallback"].state == "open"
        token = re.search(
            r'name="csrfmiddlewaretoken" value="([^"]+)"', strict.get(CIRCUITS_URL).content.decode()
        )
        assert token is not None
        done = strict.post(
            RESET_URL, {"alias": "sim-fallback", "csrfmiddlewaretoken": token.group(1)}, follow=True
        )
        assert done.status_code == 200 and "The circuit of sim-fallback is closed." in done.content.decode()
        assert breaker.states(["sim-fallback"])["sim-fallback"].state == "closed"
        (reset,) = CatalogueChange.objects.filter(alias="sim-fallback", action="circuit_reset")
        assert reset.actor_label == "platform admin ops@convosuite.test (Django admin)"
        assert strict.get(RESET_URL).status_code == 405
    finally:
        breaker.reset("sim-fallback")


def test_tenant_sessions_never_reach_the_catalogue_or_the_circuits(
    acme: Tenant, tenants: dict[str, Tenant]
) -> None:
    tenant_admin = make_member(acme, roles=[Role.TENANT_ADMIN.value])
    replay = client_for(tenants["public"])
    replay.cookies["sessionid"] = client_for(acme, tenant_admin).cookies["sessionid"].value
    for url in [
        "/admin/catalogue/catalogueentry/",
        ADD_URL,
        CIRCUITS_URL,
        "/admin/catalogue/cataloguechange/",
    ]:
        assert replay.get(url).status_code == 403
    assert replay.post(RESET_URL, {"alias": "sim-model"}).status_code == 403
    assert client_for(acme, tenant_admin).get(CIRCUITS_URL).status_code == 404  # no admin on a tenant domain
    anonymous = client_for(tenants["public"]).get(CIRCUITS_URL)
    assert anonymous.status_code == 302
    with tenant_context(acme):
        assert not CatalogueChange.objects.filter(action="circuit_reset").exists()


def test_the_catalogue_list_shows_each_models_price_and_circuit(admin_client: Client) -> None:
    with override_settings(GATEWAY_BREAKER_THRESHOLD=1, GATEWAY_BREAKER_COOLDOWN_SECONDS=600):
        breaker.record_failure("sim-fallback", "InternalServerError: upstream said 503")
    try:
        page = html.unescape(admin_client.get("/admin/catalogue/catalogueentry/").content.decode())
    finally:
        breaker.reset("sim-fallback")
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [
                re.sub(r"<[^>]+>", "", cell).strip()
                for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
            ]
            for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        )
        if cells
    }
    assert rows["sim-model"][:3] == ["Chat", "simulator", "$1 · $2"]  # per million tokens
    assert rows["sim-unpriced"][2] == "no price (cannot be allowed)"
    assert rows["sim-fallback"][-1] == "open" and rows["sim-model"][-1] == "closed"
