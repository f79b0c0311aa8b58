"""Console control pages through HTTP: budgets & limits, kill switch, models, API keys. Each change goes
through the gateway's actions (policy row + audit event); bad input is a 400 with the exact message and the
form as typed."""

import uuid

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import Role, User
from audit.models import AuditEvent
from gateway.api.actions import do_create_api_key, hash_key
from gateway.api.models import ApiKey
from gateway.models import GatewayPolicy
from tenants.models import Tenant
from tests.conftest import client_for, make_member
from tests.factories import ModelCallFactory

pytestmark = pytest.mark.django_db

VALID_BUDGETS = {
    "daily_token_budget": "500000",
    "monthly_token_budget": "5000000",
    "monthly_spend_cap": "120.50",
    "user_daily_token_cap": "50000",
    "requests_per_minute": "300",
    "tokens_per_minute": "400000",
    "user_requests_per_minute": "20",
    "user_tokens_per_minute": "",
    "budget_alert_percent": "75",
    "time_zone": "Europe/Paris",
}


def admin_client(tenant: Tenant) -> tuple[Client, User]:
    admin = make_member(tenant, roles=[Role.TENANT_ADMIN.value, Role.END_USER.value])
    return client_for(tenant, admin), admin


def policy_of(tenant: Tenant) -> GatewayPolicy:
    with tenant_context(tenant):
        from gateway.actions import access_gateway_policy

        return access_gateway_policy()


def kinds_since(tenant: Tenant, seq: int) -> list[str]:
    with tenant_context(tenant):
        return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("kind", flat=True))


def last_seq(tenant: Tenant) -> int:
    policy_of(tenant)  # the policy's creation is not part of what the test looks at
    with tenant_context(tenant):
        event = AuditEvent.objects.order_by("-seq").first()
        return event.seq if event else 0


def test_admin_sets_budgets_rate_limits_alert_and_time_zone(acme: Tenant) -> None:
    client, admin = admin_client(acme)
    before = last_seq(acme)
    response = client.post("/console/budgets/save/", VALID_BUDGETS)
    assert response.status_code == 302 and response["Location"] == "/console/budgets/"
    policy = policy_of(acme)
    assert policy.daily_token_budget == 500_000 and policy.monthly_token_budget == 5_000_000
    assert str(policy.monthly_spend_cap) == "120.50" and policy.user_daily_token_cap == 50_000
    assert policy.requests_per_minute == 300 and policy.tokens_per_minute == 400_000
    assert policy.user_requests_per_minute == 20 and policy.user_tokens_per_minute is None
    assert policy.budget_alert_percent == 75
    assert Tenant.objects.get(pk=acme.pk).time_zone == "Europe/Paris"
    assert kinds_since(acme, before) == [
        "gateway.budget_changed",
        "gateway.rate_limits_changed",
        "gateway.time_zone_changed",
    ]
    page = client.get("/console/budgets/")
    body = page.content.decode()
    assert "Budgets and limits saved." in body
    assert 'value="500000"' in body and 'value="Europe/Paris" selected' in body


def test_saving_unchanged_budgets_records_nothing(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    client.post("/console/budgets/save/", VALID_BUDGETS)
    before = last_seq(acme)
    response = client.post("/console/budgets/save/", VALID_BUDGETS, follow=True)
    assert "Nothing changed." in response.content.decode()
    assert kinds_since(acme, before) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("daily_token_budget", "-5", "Enter 0 or more."),
        ("daily_token_budget", "", "Daily token budget is required."),
        ("monthly_token_budget", "lots", "Enter a whole number."),
        ("monthly_spend_cap", "12.345", "Use at most 2 decimals (cents)."),
        ("budget_alert_percent", "150", "Enter a percentage between 1 and 100 (or leave it empty for no alerts)."),
        ("time_zone", "Mars/Olympus", "Mars/Olympus is not a known time zone."),
    ],
)  # fmt: skip
def test_bad_budget_input_is_a_400_with_the_reason_and_keeps_what_was_typed(
    acme: Tenant, field: str, value: str, message: str
) -> None:
    client, _ = admin_client(acme)
    daily_before = policy_of(acme).daily_token_budget
    response = client.post("/console/budgets/save/", {**VALID_BUDGETS, field: value})
    body = response.content.decode()
    assert response.status_code == 400
    assert f'id="id_{field}-error">{message}</p>' in body
    assert 'value="300"' in body and 'value="400000"' in body  # nothing typed is lost
    if field != "time_zone":
        assert f'value="{value}"' in body
    assert policy_of(acme).daily_token_budget == daily_before


def test_budget_page_shows_usage_bars_with_the_alert_mark(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    client.post("/console/budgets/save/", VALID_BUDGETS)
    body = client.get("/console/budgets/").content.decode()
    for budget in ("daily_tokens", "monthly_tokens", "monthly_spend"):
        assert f'data-budget="{budget}"' in body
    assert 'title="Alert at 75%"' in body
    live = client.get("/console/usage/live/").content.decode()
    assert 'id="budget-bars"' in live and "of 500,000 tokens" in live


def test_kill_switch_needs_confirmation_and_a_reason(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    unconfirmed = client.post("/console/kill-switch/set/", {"state": "on", "reason": "Spending review"})
    assert unconfirmed.status_code == 400 and "Confirm the change first." in unconfirmed.content.decode()
    no_reason = client.post("/console/kill-switch/set/", {"state": "on", "reason": "  ", "confirm": "yes"})
    assert no_reason.status_code == 400
    assert "Write a reason: your users read it in the chat." in no_reason.content.decode()
    nonsense = client.post("/console/kill-switch/set/", {"state": "maybe", "confirm": "yes"})
    assert nonsense.status_code == 400
    assert "Choose whether to switch the assistant off or back on." in nonsense.content.decode()
    assert policy_of(acme).kill_switch is False


def test_kill_switch_on_shows_everywhere_in_the_console_and_flips_back(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    before = last_seq(acme)
    response = client.post(
        "/console/kill-switch/set/", {"state": "on", "reason": "Spending review", "confirm": "yes"}
    )
    assert response.status_code == 302
    policy = policy_of(acme)
    assert policy.kill_switch is True and policy.kill_switch_reason == "Spending review"
    for path in ["/console/usage/", "/console/members/", "/console/budgets/", "/console/kill-switch/"]:
        body = client.get(path).content.decode()
        assert 'id="kill-switch-banner"' in body and "Spending review" in body, path
    assert 'data-state="on"' in client.get("/console/kill-switch/").content.decode()

    assert client.post("/console/kill-switch/set/", {"state": "off", "confirm": "yes"}).status_code == 302
    assert policy_of(acme).kill_switch is False
    assert 'id="kill-switch-banner"' not in client.get("/console/usage/").content.decode()
    assert kinds_since(acme, before) == ["gateway.kill_switch_on", "gateway.kill_switch_off"]


def test_models_page_shows_unpriced_models_but_cannot_enable_them(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    body = client.get("/console/models/").content.decode()
    assert 'value="sim-unpriced" id="allow-sim-unpriced" class="checkbox" disabled' in body
    assert "No price in the catalogue" in body
    forged = client.post(
        "/console/models/save/", {"allowed": ["sim-model", "sim-unpriced"], "default_model": "sim-model"}
    )
    assert forged.status_code == 400
    assert "The model &#x27;sim-unpriced&#x27; has no price" in forged.content.decode()
    assert "sim-unpriced" not in policy_of(acme).allowed_models


def test_admin_sets_allow_list_default_and_ordered_fallbacks(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    saved = client.post(
        "/console/models/save/", {"allowed": ["sim-model", "sim-fallback"], "default_model": "sim-fallback"}
    )
    assert saved.status_code == 302
    policy = policy_of(acme)
    assert policy.allowed_models == ["sim-model", "sim-fallback"] and policy.default_model == "sim-fallback"
    chained = client.post(
        "/console/models/fallbacks/", {"model": "sim-model", "fallback": ["sim-fallback", ""]}
    )
    assert chained.status_code == 302
    assert policy_of(acme).fallbacks == {"sim-model": ["sim-fallback"]}
    page = client.get("/console/models/").content.decode()
    assert '<option value="sim-fallback" selected>' in page

    not_allowed = client.post(
        "/console/models/save/", {"allowed": ["sim-model"], "default_model": "sim-fallback"}
    )
    assert not_allowed.status_code == 400
    assert (
        "The default model &#x27;sim-fallback&#x27; must be on the allow-list."
        in not_allowed.content.decode()
    )
    empty = client.post("/console/models/save/", {})
    assert empty.status_code == 400
    assert "Allow at least one model (use the kill switch to stop all calls)." in empty.content.decode()
    bad_fallback = client.post("/console/models/fallbacks/", {"model": "sim-model", "fallback": ["smollm2"]})
    assert bad_fallback.status_code == 400
    assert (
        "The fallback &#x27;smollm2&#x27; for &#x27;sim-model&#x27; is not on the allow-list."
        in bad_fallback.content.decode()
    )
    assert policy_of(acme).fallbacks == {"sim-model": ["sim-fallback"]}


def test_api_key_secret_is_shown_once_and_only_its_hash_is_kept(acme: Tenant) -> None:
    client, admin = admin_client(acme)
    response = client.post(
        "/console/api-keys/new/",
        {"name": "Nightly report", "models": ["sim-model"], "daily_token_budget": "5000", "expires_on": ""},
    )
    # POST-redirect-GET: the page that shows the secret is a GET, so reloading it posts nothing again.
    assert response.status_code == 303
    with tenant_context(acme):
        key = ApiKey.objects.get(name="Nightly report")
    assert response["Location"] == f"/console/api-keys/{key.id}/created/"
    shown = client.get(response["Location"])
    body = shown.content.decode()
    assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
    secret = body.split('id="new-key-secret">')[1].split("</code>")[0]
    assert secret.startswith("cs-acme.")
    # The snippets carry the tenant's own base URL and the key, ready to copy.
    assert "http://acme.localhost/v1/chat/completions" in body and f'api_key="{secret}"' in body
    assert key.secret_hash == hash_key(secret) and key.model_scope == ["sim-model"]
    assert key.created_by_id == admin.pk and key.daily_token_budget == 5000 and key.expires_at is None
    # Reloading: no secret any more, and no second key.
    again = client.get(response["Location"]).content.decode()
    assert secret not in again and "was shown once" in again
    with tenant_context(acme):
        assert ApiKey.objects.filter(name="Nightly report").count() == 1
    listing = client.get("/console/api-keys/").content.decode()
    assert secret not in listing and key.prefix in listing and "Nightly report" in listing
    assert "5,000 tokens/day" in listing


def test_api_key_secret_is_kept_in_the_session_only_encrypted(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    response = client.post("/console/api-keys/new/", {"name": "Encrypted while waiting"})
    pending = client.session["console.new_api_key"]
    assert pending["secret"].startswith("cs1:") and "cs-acme." not in pending["secret"]
    client.get(response["Location"])
    assert "console.new_api_key" not in client.session


def test_api_key_needs_a_name(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    response = client.post("/console/api-keys/new/", {"name": "  ", "models": ["sim-model"]})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Give the key a name, so you can tell it apart later." in body
    assert 'name="models" value="sim-model" checked' in body


def test_api_key_expiry_and_limits_are_checked_and_kept_as_typed(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    response = client.post(
        "/console/api-keys/new/",
        {"name": "Bad limits", "expires_on": "2001-01-01", "daily_token_budget": "0", "requests_per_minute": "x"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Choose today or a later date." in body
    assert "At least 1 (leave it empty for no budget of its own)." in body
    assert "Enter a whole number." in body
    assert 'value="Bad limits"' in body and 'value="2001-01-01"' in body
    with tenant_context(acme):
        assert not ApiKey.objects.filter(name="Bad limits").exists()
    ok = client.post("/console/api-keys/new/", {"name": "Until new year", "expires_on": "2099-12-31"})
    assert ok.status_code == 303
    with tenant_context(acme):
        key = ApiKey.objects.get(name="Until new year")
    # It works through the last day in the tenant's time zone (UTC here).
    assert key.expires_at is not None and key.expires_at.isoformat() == "2100-01-01T00:00:00+00:00"


def test_api_key_revoke_and_another_tenants_key_is_not_found(acme: Tenant, globex: Tenant) -> None:
    client, _ = admin_client(acme)
    with tenant_context(acme):
        key = do_create_api_key(name="Old script").api_key
    with tenant_context(globex):
        globex_key = do_create_api_key(name="Globex script").api_key
    assert client.post(f"/console/api-keys/{globex_key.id}/revoke/").status_code == 404
    assert client.post(f"/console/api-keys/{uuid.uuid4()}/revoke/").status_code == 404
    response = client.post(f"/console/api-keys/{key.id}/revoke/", follow=True)
    assert "The key Old script is revoked" in response.content.decode()
    with tenant_context(acme):
        key.refresh_from_db()
    assert key.revoked_at is not None
    with tenant_context(globex):
        globex_key.refresh_from_db()
    assert globex_key.revoked_at is None


def test_end_user_gets_403_on_every_control_page_and_action(acme: Tenant) -> None:
    client = client_for(acme, make_member(acme, roles=[Role.END_USER.value]))
    for path in ["/console/budgets/", "/console/kill-switch/", "/console/models/", "/console/api-keys/"]:
        assert client.get(path).status_code == 403, path
    for path in ["/console/budgets/save/", "/console/kill-switch/set/", "/console/models/save/",
                 "/console/models/fallbacks/", "/console/api-keys/new/"]:  # fmt: skip
        assert client.post(path, {"state": "on", "reason": "x", "confirm": "yes"}).status_code == 403, path
    assert policy_of(acme).kill_switch is False


def test_nav_has_no_placeholders_left(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    body = client.get("/console/usage/").content.decode()
    for key in ("models", "budgets", "kill-switch", "api-keys"):
        assert f'data-nav="{key}"' in body
    assert "Soon" not in body and "/console/coming/" not in body


def test_key_traffic_is_shown_with_the_keys_name_in_the_log_and_can_be_filtered(acme: Tenant) -> None:
    client, _ = admin_client(acme)
    with tenant_context(acme):
        key = do_create_api_key(name="Nightly report script").api_key
        by_key = ModelCallFactory.create(user=None, source=key.call_source)
        ModelCallFactory.create(source="chat")
    listing = client.get("/console/model-calls/").content.decode()
    row = listing.split(f'data-call-id="{by_key.id}"')[1].split("</tr>")[0]
    assert "Nightly report script" in row and f"API key · {key.prefix}" in row and "—" not in row
    filtered = client.get("/console/model-calls/", {"caller": key.call_source}).content.decode()
    assert filtered.count("data-call-id=") == 1 and f'data-call-id="{by_key.id}"' in filtered
    assert client.get("/console/model-calls/", {"q": "nightly"}).content.decode().count("data-call-id=") == 1
    assert client.get("/console/model-calls/", {"caller": "nobody"}).status_code == 400
    detail = client.get(f"/console/model-calls/{by_key.id}/").content.decode()
    assert "Nightly report script" in detail.split('id="call-caller"')[1].split("</dd>")[0]
    keys_page = client.get("/console/api-keys/").content.decode()
    assert f'data-key-tokens-today="{by_key.tokens_in + by_key.tokens_out}"' in keys_page
