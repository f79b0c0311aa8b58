"""The gateway's cross-tenant screen: another tenant's canary marker in a prompt or an answer stops the call
before the text reaches the provider, the records or the caller; a platform incident is opened with both
tenants, both audit chains get the event, both tenants' model calls are paused, platform admins are alerted.
A tenant's own marker is never a finding and never recorded or shown."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from accounts.models import User
from audit.models import AuditEvent
from devtools.llm_simulator.testing import SimulatorControl
from gateway import screening
from gateway.actions import access_gateway_policy
from gateway.errors import CrossTenantBlocked
from gateway.models import ModelCall
from gateway.service import complete
from gateway.streaming import stream
from incidents.canaries import marker_for
from incidents.models import Incident, IncidentNotification
from tenants.models import Tenant

pytestmark = pytest.mark.usefixtures("committed_db")


def chat_calls(sim: SimulatorControl) -> int:
    return len([entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"])


@pytest.fixture
def pair(new_tenant: Callable[[str], Tenant]) -> tuple[Tenant, Tenant]:
    return new_tenant("src"), new_tenant("dst")


def test_a_prompt_carrying_another_tenants_marker_is_blocked_recorded_withheld_and_contained(
    pair: tuple[Tenant, Tenant],
    sim: SimulatorControl,
    platform_admin: User,
    mailoutbox: list[Any],
) -> None:
    source, receiving = pair
    secret = "Acme-only pricing sheet: discount 37%"
    with tenant_context(source):
        planted = screening.plant(secret, "prompt")
    request_id = uuid.uuid4()
    with tenant_context(receiving), pytest.raises(CrossTenantBlocked) as blocked:
        complete(
            tenant_schema=receiving.schema_name,
            request_id=request_id,
            user_id=None,
            model="sim-model",
            messages=[{"role": "system", "content": planted}, {"role": "user", "content": "Hello"}],
        )
    assert chat_calls(sim) == 0  # nothing reached the provider
    incident = Incident.objects.get(details__request_id=str(request_id))
    assert blocked.value.reference == incident.reference in blocked.value.user_message
    assert incident.kind == Incident.Kind.CROSS_TENANT_LEAK and incident.severity == "critical"
    assert {(link.schema_name, link.role) for link in incident.tenant_links.all()} == {
        (source.schema_name, "source"),
        (receiving.schema_name, "receiving"),
    }
    assert incident.status == Incident.Status.CONTAINED
    with tenant_context(receiving):
        record = ModelCall.objects.get(request_id=request_id)
        assert (record.status, record.error_code, record.user_id) == ("refused", "security_blocked", None)
        assert record.seq is not None  # sealed into the receiving tenant's chain
        assert secret not in json.dumps(record.messages) and screening.WITHHELD in json.dumps(record.messages)
        event = AuditEvent.objects.get(kind="security.cross_tenant_blocked")
        assert event.details["request_id"] == str(request_id) and source.schema_name not in json.dumps(
            event.details
        )
        assert access_gateway_policy().kill_switch
    with tenant_context(source):
        event = AuditEvent.objects.get(kind="security.cross_tenant_exposure_blocked")
        assert event.details["marker"] == ["prompt"] and receiving.schema_name not in json.dumps(
            event.details
        )
        assert access_gateway_policy().kill_switch
    assert IncidentNotification.objects.filter(
        incident=incident, recipient=platform_admin.email, sent=True
    ).exists()
    assert any(platform_admin.email in message.to for message in mailoutbox)


def test_own_marker_goes_to_the_provider_but_is_neither_recorded_nor_returned(
    new_tenant: Callable[[str], Tenant], sim: SimulatorControl
) -> None:
    tenant = new_tenant("own")
    with tenant_context(tenant):
        token = marker_for(tenant.schema_name, "prompt")
        sim.set_scenario(reply=f"My instructions end with {token} as you see.")
        request_id = uuid.uuid4()
        completion = complete(
            tenant_schema=tenant.schema_name,
            request_id=request_id,
            user_id=None,
            model="sim-model",
            messages=[{"role": "system", "content": screening.plant("Be brief.", "prompt")}],
        )
        record = ModelCall.objects.get(request_id=request_id)
    sent = [entry for entry in sim.requests() if entry["path"] == "/v1/chat/completions"][-1]
    assert token in json.dumps(sent["body"]["messages"])
    assert token not in completion.text and completion.text.startswith("My instructions end with")
    assert token not in record.response and token not in json.dumps(record.messages)
    assert not Incident.objects.filter(tenant_links__schema_name=tenant.schema_name).exists()


def test_a_streamed_answer_with_another_tenants_marker_is_cut_before_any_of_it_is_shown(
    pair: tuple[Tenant, Tenant], sim: SimulatorControl
) -> None:
    source, receiving = pair
    with tenant_context(source):
        foreign = marker_for(source.schema_name, "knowledge")
    # Tokens of 3 characters: the marker arrives split over many chunks.
    sim.set_scenario(reply=f"Sure. The reference is {foreign} and more.", token_delay_ms=0)
    request_id = uuid.uuid4()
    shown: list[str] = []
    with tenant_context(receiving):
        events = list(
            stream(
                tenant_schema=receiving.schema_name,
                request_id=request_id,
                user_id=None,
                model="sim-model",
                messages=[{"role": "user", "content": "Tell me"}],
            )
        )
        record = ModelCall.objects.get(request_id=request_id)
    shown = [event.text for event in events if event.kind == "token"]
    end = events[-1].result
    assert end is not None and isinstance(end.error, CrossTenantBlocked)
    assert "cs-canary" not in "".join(shown) and "cs-" not in "".join(shown)[-3:]
    assert (record.status, record.error_code, record.response) == (
        "cut_off",
        "security_blocked",
        screening.WITHHELD,
    )
    assert Incident.objects.filter(details__request_id=str(request_id), details__where="response").exists()


@pytest.mark.parametrize(
    ("pieces", "released"),
    [
        (["Hello ", "world"], ["Hello ", "world"]),
        (["see cs-", "can", "ary-0"], ["see ", "", ""]),
        (["a c", "at"], ["a ", "cat"]),
        (["x cs-canary-zz"], ["x cs-canary-zz"]),
    ],
)
def test_stream_screen_holds_back_only_what_could_become_a_marker(
    pieces: list[str], released: list[str]
) -> None:
    guard = screening.StreamScreen("nobody")
    assert [guard.feed(piece)[0] for piece in pieces] == released
