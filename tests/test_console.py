"""Tenant admin console: usage figures, model-call log, members and audit pages, from the tenant's own rows."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.actions import do_record_audit_event
from console.usage import RangeError, parse_range, periods_for, usage_report, usage_series
from gateway.api.actions import do_create_api_key
from gateway.models import ModelCall
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.factories import ModelCallFactory

pytestmark = pytest.mark.django_db


def admin_of(tenant: Tenant, **fields: object) -> User:
    return make_member(tenant, roles=[Role.TENANT_ADMIN.value, Role.END_USER.value], **fields)


def call_at(moment: datetime, **fields: object) -> ModelCall:
    call = ModelCallFactory.create(**fields)
    ModelCall.objects.filter(pk=call.pk).update(created_at=moment)
    return call


def test_usage_report_for_today_and_for_a_range_agrees_with_itself(acme: Tenant) -> None:
    now = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    with tenant_context(acme):
        ModelCall.objects.all().delete()
        alice = make_member(acme, display_name="Alice Archer")
        key = do_create_api_key(name="Report script").api_key
        call_at(now - timedelta(hours=1), user=alice, tokens_in=100, tokens_out=50, cost=Decimal("0.25"),
                latency_ms=100)  # fmt: skip
        call_at(now - timedelta(hours=3), user=alice, model_requested="other-model", tokens_in=10, tokens_out=0,
                latency_ms=300)  # fmt: skip
        call_at(now - timedelta(hours=2), user=None, source=key.call_source, tokens_in=20, tokens_out=20,
                latency_ms=200)  # fmt: skip
        call_at(now - timedelta(days=3), user=alice, tokens_in=1000, tokens_out=1000, cost=Decimal("1.5"))
        call_at(now - timedelta(days=40), user=alice, tokens_in=99999)  # last month: not counted
        call_at(now - timedelta(minutes=5), user=None, status=ModelCall.Status.ERROR, tokens_in=0, tokens_out=0,
                cost=0)  # fmt: skip
        # In progress: neither failed nor finished, no tokens recorded yet.
        call_at(now - timedelta(minutes=1), user=alice, status=ModelCall.Status.STARTED, tokens_in=0, tokens_out=0,
                cost=0)  # fmt: skip
        today = usage_report(now, "UTC")
        month = usage_report(now, "UTC", parse_range({"range": "month"}, now.date()))
    totals = today["totals"]
    assert (totals["tokens"], totals["calls"], totals["failed_calls"], totals["running_calls"]) == (200, 5, 1, 1)
    assert totals["cost"] == "0.25004000"  # 0.25 and the factory's price of two more calls
    assert totals["error_rate"] == 25.0  # 1 failed of 4 finished
    assert (totals["latency_p50"], totals["latency_p95"]) == (200, 290)  # of the 3 answered calls: 100, 200, 300 ms
    series = today["series"]
    assert series["bucket"] == "hour" and len(series["labels"]) == 24 and series["labels"][14] == "14:00"
    assert series["totals"][14] == 150 and series["totals"][12] == 10 and series["totals"][13] == 40
    # Every widget adds up to the same totals.
    assert sum(series["totals"]) == sum(row["tokens"] for row in today["by_model"]) == totals["tokens"]
    assert sum(row["tokens"] for row in today["by_user"]) == totals["tokens"]
    assert sum(series["failed"]) == sum(row["failed_calls"] for row in today["by_model"]) == totals["failed_calls"]
    assert sum(series["calls"]) == totals["calls"]
    by_user = {row["user"]: row for row in today["by_user"]}
    assert by_user["Report script"]["kind"] == "key" and by_user["Report script"]["tokens"] == 40
    assert by_user["Alice Archer"]["tokens"] == 160
    assert month["totals"]["tokens"] == 2200 and month["series"]["bucket"] == "day"
    assert len(month["series"]["labels"]) == 26 and month["series"]["totals"][22] == 2000
    assert {row["model"]: row["tokens"] for row in month["by_model"]} == {"sim-model": 2190, "other-model": 10}
    # A model keeps its colour whatever the period.
    assert today["colors"]["sim-model"] == month["colors"]["sim-model"]


def test_usage_range_is_checked(acme: Tenant) -> None:
    today = date(2026, 11, 26)
    assert parse_range({"range": "7d"}, today).start_day == date(2026, 11, 20)
    assert parse_range({"from": "2026-11-01", "to": "2026-11-03"}, today).days == 3
    with pytest.raises(RangeError, match="The start date is after the end date."):
        parse_range({"from": "2026-11-05", "to": "2026-11-03"}, today)
    with pytest.raises(RangeError, match="at most 92 days"):
        parse_range({"from": "2026-01-01", "to": "2026-11-03"}, today)
    client = client_for(acme, admin_of(acme))
    bad = client.get("/console/usage/", {"from": "not a date"})
    assert bad.status_code == 400 and "Enter dates like 2026-11-30." in bad.content.decode()


def test_usage_periods_follow_the_tenants_time_zone() -> None:
    now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # still the 25th in New York
    periods = periods_for(now, "America/New_York")
    assert periods.today_start.isoformat() == "2026-11-25T00:00:00-05:00"
    assert periods.month_start.day == 1


def test_hourly_series_has_every_hour_even_across_a_dst_change(acme: Tenant) -> None:
    periods = periods_for(datetime(2026, 3, 29, 12, 0, tzinfo=UTC), "Europe/Berlin")
    with tenant_context(acme):
        series = usage_series(periods.today_start, periods.today_start + timedelta(days=1), bucket="hour")
    assert len(series["labels"]) == 23  # the night the clocks go forward


def test_usage_page_shows_figures_and_chart_data(acme: Tenant) -> None:
    admin = admin_of(acme)
    with tenant_context(acme):
        ModelCall.objects.all().delete()
        ModelCallFactory.create(user=admin, tokens_in=1200, tokens_out=34, cost=Decimal("0.0024"))
    client = client_for(acme, admin)
    page = client.get("/console/usage/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "vendor/chartjs/chart.umd.min.js" in body and 'id="chart-tokens"' in body and 'id="chart-health"' in body
    assert "1,234" in body and "$0.0024" in body
    assert 'hx-trigger="every 5s"' in body
    live = client.get("/console/usage/live/")
    assert live.status_code == 200
    fragment = live.content.decode()
    data = json.loads(fragment.split('id="usage-data" type="application/json">')[1].split("</script>")[0])
    assert data["totals"]["tokens"] == 1234
    assert "BUDGET BARS SLOT" not in fragment  # the slot is a template comment, not shown


def test_usage_data_cannot_break_out_of_its_script_tag(acme: Tenant) -> None:
    admin = admin_of(acme)
    evil = make_member(acme, display_name="</script><script>alert(1)</script>")
    with tenant_context(acme):
        ModelCallFactory.create(user=evil)
    body = client_for(acme, admin).get("/console/usage/live/").content.decode()
    assert "<script>alert(1)" not in body


def test_usage_counts_only_this_tenants_calls(acme: Tenant, globex: Tenant) -> None:
    admin = admin_of(acme)
    with tenant_context(acme):
        ModelCall.objects.all().delete()
    with tenant_context(globex):
        ModelCallFactory.create(tokens_in=777777)
    body = client_for(acme, admin).get("/console/usage/").content.decode()
    assert "777,777" not in body and "No model calls in this period" in body


def test_model_call_log_filters_by_user_model_status_and_date(acme: Tenant) -> None:
    admin = admin_of(acme)
    alice, bob = make_member(acme, display_name="Alice"), make_member(acme, display_name="Bob")
    with tenant_context(acme):
        ModelCall.objects.all().delete()
        alices = ModelCallFactory.create(user=alice)
        bobs_failed = ModelCallFactory.create(
            user=bob,
            status=ModelCall.Status.ERROR,
            error_code="provider_timeout",
            error="Timeout talking to provider",
        )
        other_model = ModelCallFactory.create(user=bob, model_requested="other-model")
        old = call_at(timezone.now() - timedelta(days=10), user=alice)
    client = client_for(acme, admin)

    def ids(query: str) -> set[str]:
        response = client.get(f"/console/model-calls/?{query}")
        assert response.status_code == 200
        return {str(call.id) for call in response.context["page"]}

    assert ids("") == {str(c.id) for c in (alices, bobs_failed, other_model, old)}
    assert ids(f"user={alice.pk}") == {str(alices.id), str(old.id)}
    assert ids("model=other-model") == {str(other_model.id)}
    assert ids("status=error") == {str(bobs_failed.id)}
    assert ids("q=timeout") == {str(bobs_failed.id)}
    assert ids(f"q={alices.request_id}") == {str(alices.id)}
    today = timezone.now().date().isoformat()
    assert str(old.id) not in ids(f"date_from={today}")
    assert ids(f"date_to={(timezone.now() - timedelta(days=5)).date().isoformat()}") == {str(old.id)}


def test_model_call_log_rejects_a_backwards_date_range_clearly(acme: Tenant) -> None:
    response = client_for(acme, admin_of(acme)).get(
        "/console/model-calls/?date_from=2026-05-02&date_to=2026-05-01"
    )
    assert response.status_code == 400
    assert "The start date is after the end date." in response.content.decode()


def test_model_call_log_is_paginated(acme: Tenant) -> None:
    admin = admin_of(acme)
    with tenant_context(acme):
        ModelCall.objects.all().delete()
        ModelCallFactory.create_batch(55, user=admin)
    client = client_for(acme, admin)
    first, second = client.get("/console/model-calls/"), client.get("/console/model-calls/?page=2")
    assert len(first.context["page"]) == 50 and len(second.context["page"]) == 5
    assert "Page 2 of 2" in second.content.decode()


def test_model_call_record_shows_messages_and_response(acme: Tenant) -> None:
    admin = admin_of(acme)
    with tenant_context(acme):
        call = ModelCallFactory.create(
            messages=[{"role": "user", "content": "Quarterly numbers <b>please</b>"}],
            response="Here they are",
        )
    response = client_for(acme, admin).get(f"/console/model-calls/{call.id}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Quarterly numbers &lt;b&gt;please&lt;/b&gt;" in body and "Here they are" in body


def test_model_call_of_another_tenant_is_not_found(acme: Tenant, globex: Tenant) -> None:
    with tenant_context(globex):
        globex_call = ModelCallFactory.create(response="globex secret")
    client = client_for(acme, admin_of(acme))
    assert client.get(f"/console/model-calls/{globex_call.id}/").status_code == 404
    assert client.get(f"/console/model-calls/{uuid.uuid4()}/").status_code == 404


def test_end_user_gets_403_on_every_console_page_and_no_console_link(acme: Tenant) -> None:
    user = make_member(acme)
    client = client_for(acme, user)
    for path in ["/console/", "/console/usage/", "/console/usage/live/", "/console/model-calls/",
                 "/console/members/", "/console/audit-events/", "/console/budgets/"]:  # fmt: skip
        assert client.get(path).status_code == 403, path
    assert 'id="console-link"' not in client.get("/chat/").content.decode()


def test_tenant_admin_sees_console_link_and_every_page_is_built(acme: Tenant) -> None:
    client = client_for(acme, admin_of(acme))
    assert 'id="console-link"' in client.get("/chat/").content.decode()
    assert client.get("/console/coming/kill-switch/").status_code == 404  # no placeholder pages left
    assert client.get("/console/kill-switch/").status_code == 200


def test_members_mirror_roles_and_last_login(acme: Tenant) -> None:
    admin = admin_of(acme, display_name="Ada Admin")
    signed_in = make_member(
        acme, display_name="Sam Signed", last_login=datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    )
    client = client_for(acme, admin)
    found = client.get("/console/members/?q=Sam")
    assert [person.pk for person in found.context["page"]] == [signed_in.pk]
    assert "Sam Signed" in found.content.decode() and "2026-11-20 09:15" in found.content.decode()
    admins = client.get("/console/members/?role=tenant_admin").context["page"]
    assert admin.pk in {person.pk for person in admins} and signed_in.pk not in {
        person.pk for person in admins
    }


def test_audit_page_lists_the_tenants_events(acme: Tenant) -> None:
    with tenant_context(acme):
        do_record_audit_event(kind="budget.changed", actor_label="someone", details={"daily_tokens": 5000})
    body = client_for(acme, admin_of(acme)).get("/console/audit-events/?kind=budget.").content.decode()
    assert "budget.changed" in body and "Daily tokens" in body


def test_audit_details_read_as_words_and_values_not_python(acme: Tenant) -> None:
    with tenant_context(acme):
        event = do_record_audit_event(
            kind="prompts.label_moved",
            actor_label="Readable Rita",
            details={
                "template_id": str(uuid.uuid4()), "template_name": "Travel desk", "version": {"from": 3, "to": 4},
                "reason": None, "enabled": False, "models": ["sim-model", "sim-fallback"],
                "daily_token_budget": 150000, "expires_at": "2027-01-01T00:00:00+00:00",
            },
        )  # fmt: skip
    body = client_for(acme, admin_of(acme)).get("/console/audit-events/", {"actor": "Readable Rita"})
    html = body.content.decode()
    row = html.split(f'data-kind="{event.kind}"')[1].split("</tr>")[0]
    assert "Prompts: label moved" in row
    for shown in ["<dt>Template</dt><dd>Travel desk</dd>", "<dt>Version</dt><dd>3 → 4</dd>",
                  "<dt>Reason</dt><dd>—</dd>", "<dt>Enabled</dt><dd>no</dd>",
                  "<dt>Models</dt><dd>sim-model, sim-fallback</dd>", "<dt>Daily token budget</dt><dd>150,000</dd>",
                  "<dt>Expires</dt><dd>2027-01-01 00:00 UTC</dd>"]:  # fmt: skip
        assert shown in row, shown
    for notation in ["{", "None", "False", "[", "&#x27;"]:
        assert notation not in row, notation
    # Ids come after the readable details.
    assert row.index("Template id") > row.index("Daily token budget")


def test_audit_events_filter_by_person_and_dates_in_the_tenants_time_zone(acme: Tenant) -> None:
    fay, finn = f"Filter Fay {uuid.uuid4().hex[:6]}", f"Filter Finn {uuid.uuid4().hex[:6]}"
    with tenant_context(acme):
        do_record_audit_event(kind="budget.changed", actor_label=fay, details={"daily_tokens": 1})
        do_record_audit_event(kind="budget.changed", actor_label=fay, details={"daily_tokens": 2})
        do_record_audit_event(kind="kill_switch.changed", actor_label=finn, details={})
    client = client_for(acme, admin_of(acme))
    by_fay = client.get("/console/audit-events/", {"actor": fay}).content.decode()
    assert by_fay.count("<tr data-kind=") == 2 and finn not in by_fay.split('id="audit-table"')[1]
    assert f'<option value="{finn}">' in by_fay  # the people who appear in the events
    today = datetime.now(UTC).date()  # acme keeps the default time zone, UTC
    same_day = {"actor": fay, "date_from": today.isoformat(), "date_to": today.isoformat()}
    assert client.get("/console/audit-events/", same_day).content.decode().count("<tr data-kind=") == 2
    tomorrow = {"actor": fay, "date_from": (today + timedelta(days=1)).isoformat()}
    assert "No events match these filters." in client.get("/console/audit-events/", tomorrow).content.decode()
    backwards = client.get("/console/audit-events/", {"date_from": "2026-03-02", "date_to": "2026-03-01"})
    assert backwards.status_code == 400 and "The start date is after the end date." in backwards.content.decode()
