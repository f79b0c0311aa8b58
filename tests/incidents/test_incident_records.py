"""The platform incident record: opened once per dedupe key, linked to its tenants, with a timeline, and
platform admins alerted by e-mail (each e-mail recorded on the incident)."""

from typing import Any

import pytest

from accounts.models import Role
from incidents.actions import (
    IncidentRejected,
    do_open_incident,
    do_set_incident_status,
    notify_platform_admins,
)
from incidents.models import Incident, IncidentEvent, IncidentNotification, IncidentTenant
from tenants.models import Tenant
from tests.conftest import make_member

pytestmark = pytest.mark.django_db


def open_evidence_incident(**overrides: Any) -> Incident:
    fields: dict[str, Any] = {
        "kind": Incident.Kind.EVIDENCE,
        "title": "Signer refused a chain head of acme",
        "detected_by": "evidence periodic signer",
        "severity": Incident.Severity.CRITICAL,
        "tenants": [("acme", IncidentTenant.Role.AFFECTED)],
        "details": {"chain": "model_calls", "seq": 41},
        "dedupe_key": "evidence:acme:model_calls",
    }
    return do_open_incident(**{**fields, **overrides})


def test_a_repeated_detection_joins_the_open_incident_and_platform_admins_are_alerted_once(
    tenants: dict[str, Tenant], mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=True, email="ops@platform.test"
    )
    make_member(
        tenants["public"], roles=[Role.PLATFORM_ADMIN.value], is_staff=False, email="nostaff@platform.test"
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = open_evidence_incident()
        again = open_evidence_incident(details={"chain": "model_calls", "seq": 42})
    assert again.pk == first.pk
    assert [link.schema_name for link in first.tenant_links.all()] == ["acme"]
    assert first.tenant_links.get().tenant == tenants["acme"]
    kinds = list(first.events.values_list("kind", flat=True))
    assert kinds == [IncidentEvent.Kind.DETECTED, IncidentEvent.Kind.SEEN_AGAIN, IncidentEvent.Kind.NOTIFIED]
    # One e-mail per platform admin (other tests' staff may exist too), none to staff without the flag.
    sent_to = [message.to for message in mailoutbox]
    assert sent_to.count(["ops@platform.test"]) == 1 and ["nostaff@platform.test"] not in sent_to
    assert all(first.reference in message.subject for message in mailoutbox)
    sent = IncidentNotification.objects.get(incident=first, recipient="ops@platform.test")
    assert sent.recipient == "ops@platform.test" and sent.sent


def test_a_resolved_incident_does_not_swallow_a_new_detection(tenants: dict[str, Tenant]) -> None:
    first = open_evidence_incident(notify_platform=False)
    do_set_incident_status(first, Incident.Status.RESOLVED, actor_label="ops")
    second = open_evidence_incident(notify_platform=False)
    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.window_end is not None and first.resolved_at is not None


def test_status_moves_forward_only_and_each_move_is_on_the_timeline(tenants: dict[str, Tenant]) -> None:
    incident = open_evidence_incident(notify_platform=False, dedupe_key="")
    contained = do_set_incident_status(incident, Incident.Status.CONTAINED, actor_label="ops")
    assert contained.contained_at is not None
    with pytest.raises(IncidentRejected, match="cannot go back"):
        do_set_incident_status(contained, Incident.Status.OPEN, actor_label="ops")
    with pytest.raises(IncidentRejected, match="Unknown status"):
        do_set_incident_status(contained, "forgotten", actor_label="ops")
    assert list(incident.events.values_list("kind", flat=True)) == ["detected", "status"]


def test_unknown_kind_is_refused(tenants: dict[str, Tenant]) -> None:
    with pytest.raises(IncidentRejected, match="Unknown incident kind"):
        open_evidence_incident(kind="gremlins")


def test_no_platform_admin_to_alert_is_logged_not_fatal(tenants: dict[str, Tenant], caplog: Any) -> None:
    incident = open_evidence_incident(notify_platform=False, dedupe_key="")
    assert notify_platform_admins(incident.pk) >= 0
    assert incident.events.filter(kind=IncidentEvent.Kind.NOTIFIED).exists()
