"""The catalogue in the database drives every call: a price change is charged from the next call on (in this
process at once, in a worker within GATEWAY_CATALOGUE_CHECK_SECONDS), calls already recorded keep their
price, and a disabled model is refused."""

import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django_tenants.utils import tenant_context

from catalogue.models import CatalogueChange, CatalogueEntry
from devtools.llm_simulator.testing import SimulatorControl
from gateway import policy as gateway_policy
from gateway.actions import do_set_model_allow_list
from gateway.catalogue import do_save_catalogue_entry
from gateway.config import announce_catalogue_change
from gateway.errors import ModelNotAllowed
from gateway.models import ModelCall
from gateway.service import complete
from tenants.models import Tenant
from tests.gateway.test_workers import enqueue, finished, pending_replies

pytestmark = pytest.mark.usefixtures("committed_db")

MESSAGES = [{"role": "user", "content": "What does a price change cost?"}]


def call(tenant: Tenant, model: str = "sim-model") -> Any:
    return complete(
        tenant_schema=tenant.schema_name,
        request_id=uuid.uuid4(),
        user_id=None,
        model=model,
        messages=MESSAGES,
    )


def expected_cost(record: ModelCall, input_price: str, output_price: str) -> Decimal:
    return Decimal(input_price) * record.tokens_in + Decimal(output_price) * record.tokens_out


@pytest.fixture
def set_sim_model_price() -> Iterator[Callable[[str, str], None]]:
    """Change sim-model's price as a platform admin does (committed); the seed price comes back afterwards."""
    entry = CatalogueEntry.objects.get(alias="sim-model")
    seed = entry.input_cost_per_token, entry.output_cost_per_token

    def set_price(input_price: str, output_price: str) -> None:
        entry.input_cost_per_token, entry.output_cost_per_token = Decimal(input_price), Decimal(output_price)
        do_save_catalogue_entry(entry, acting_label="platform admin tester")

    yield set_price
    entry.input_cost_per_token, entry.output_cost_per_token = seed
    do_save_catalogue_entry(entry, acting_label="tests: seed price restored")


def test_a_new_price_is_reserved_and_charged_from_the_next_call_and_old_records_keep_theirs(
    fresh_tenant: Tenant, sim: SimulatorControl, set_sim_model_price: Callable[[str, str], None]
) -> None:
    sim.set_scenario(reply="Some words to count.")
    with tenant_context(fresh_tenant):
        before = ModelCall.objects.get(id=call(fresh_tenant).call_id)
        assert before.cost == expected_cost(before, "0.000001", "0.000002") > 0
        set_sim_model_price("0.00001", "0.00003")
        reservation = gateway_policy.reserve(
            tenant_schema=fresh_tenant.schema_name, request_id=uuid.uuid4(), user_id=None, model="sim-model",
            prompt_tokens=10, max_tokens=100,
        )  # fmt: skip
        gateway_policy.release(reservation)
        after = ModelCall.objects.get(id=call(fresh_tenant).call_id)
        before.refresh_from_db()
    assert reservation.cost == Decimal("0.00001") * 10 + Decimal("0.00003") * 100
    assert after.cost == expected_cost(after, "0.00001", "0.00003")
    assert before.cost == expected_cost(before, "0.000001", "0.000002")  # charged at the price of its time
    change = CatalogueChange.objects.filter(alias="sim-model", actor_label="platform admin tester").latest(
        "at"
    )
    assert change.changes == {
        "input_cost_per_token": ["0.000001", "0.00001"],
        "output_cost_per_token": ["0.000002", "0.00003"],
    }


def test_a_running_worker_charges_the_new_price_after_the_check_interval(
    fresh_tenant: Tenant,
    sim: SimulatorControl,
    worker: None,
    wait_for: Any,
    set_sim_model_price: Callable[[str, str], None],
) -> None:
    sim.set_scenario(reply="Counted by the worker.")
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    first, second = pending_replies(fresh_tenant, 2)
    enqueue(fresh_tenant, [first], queue)
    wait_for(lambda: finished(fresh_tenant, [first]), timeout=60, message="the first reply")
    set_sim_model_price("0.00001", "0.00003")
    # The documented staleness window: a worker checks the catalogue's version at most this often.
    time.sleep(settings.GATEWAY_CATALOGUE_CHECK_SECONDS + 0.2)
    enqueue(fresh_tenant, [second], queue)
    wait_for(lambda: finished(fresh_tenant, [second]), timeout=60, message="the second reply")
    with tenant_context(fresh_tenant):
        old, new = (ModelCall.objects.get(request_id=str(reply.request_id)) for reply in (first, second))
    assert old.status == new.status == ModelCall.Status.OK
    assert old.cost == expected_cost(old, "0.000001", "0.000002")
    assert new.cost == expected_cost(new, "0.00001", "0.00003") > old.cost


@pytest.fixture
def extra_model(sim: SimulatorControl) -> Iterator[CatalogueEntry]:
    base = CatalogueEntry.objects.get(alias="sim-model").api_base
    entry = CatalogueEntry(
        alias=f"sim-extra-{uuid.uuid4().hex[:6]}", litellm_model="openai/sim-model", provider="simulator",
        api_base=base, api_key_env="GATEWAY_SIMULATOR_KEY", input_cost_per_token=Decimal("0.000001"),
        output_cost_per_token=Decimal("0.000001"), max_tokens=64, timeout_seconds=5,
    )  # fmt: skip
    do_save_catalogue_entry(entry, acting_label="tests")
    yield entry
    CatalogueEntry.objects.filter(pk=entry.pk).delete()
    CatalogueChange.objects.filter(alias=entry.alias).delete()
    announce_catalogue_change()


def test_a_disabled_model_is_refused_without_a_provider_call(
    fresh_tenant: Tenant, sim: SimulatorControl, extra_model: CatalogueEntry
) -> None:
    sim.set_scenario(reply="Still here.")
    with tenant_context(fresh_tenant):
        do_set_model_allow_list(allowed_models=["sim-model", extra_model.alias], actor_label="tester")
        assert call(fresh_tenant, extra_model.alias).text == "Still here."
        extra_model.enabled = False
        do_save_catalogue_entry(extra_model, acting_label="platform admin tester")
        requests_before = len(sim.requests())
        with pytest.raises(ModelNotAllowed, match="is not offered"):
            call(fresh_tenant, extra_model.alias)
        refused = ModelCall.objects.filter(model_requested=extra_model.alias).latest("created_at")
    assert refused.status == ModelCall.Status.REFUSED
    assert len(sim.requests()) == requests_before


@pytest.mark.django_db
def test_seeding_adds_only_missing_entries_and_never_overwrites_an_admin_edit() -> None:
    edited = CatalogueEntry.objects.get(alias="sim-model")
    edited.input_cost_per_token = Decimal("0.5")
    edited.save()
    CatalogueEntry.objects.filter(alias="sim-fallback").delete()
    out = StringIO()
    call_command("sync_model_catalogue", stdout=out)
    assert out.getvalue().strip() == "catalogue: added sim-fallback"
    assert CatalogueEntry.objects.get(alias="sim-model").input_cost_per_token == Decimal("0.5")
    restored = CatalogueEntry.objects.get(alias="sim-fallback")
    assert (restored.provider, restored.output_cost_per_token) == ("simulator-b", Decimal("0.000004"))
    assert CatalogueChange.objects.filter(
        alias="sim-fallback", action="seeded", actor_label="manage.py sync_model_catalogue"
    ).exists()
    call_command("sync_model_catalogue", stdout=out)
    assert out.getvalue().strip().endswith("catalogue: nothing to add")
    assert set(CatalogueEntry.objects.values_list("alias", flat=True)) == set(settings.GATEWAY_MODELS)


@pytest.mark.django_db
def test_make_up_refreshes_the_seeded_endpoints_and_records_it(simulator: SimulatorControl) -> None:
    from gateway.catalogue import do_seed_catalogue

    # The session's simulator runs on its own port, not the one in the settings.
    assert (
        CatalogueEntry.objects.get(alias="sim-model").api_base
        != settings.GATEWAY_MODELS["sim-model"]["api_base"]
    )
    try:
        assert do_seed_catalogue(acting_label="manage.py seed_demo", refresh_endpoints=True) == []
        entry = CatalogueEntry.objects.get(alias="sim-model")
        assert entry.api_base == settings.GATEWAY_MODELS["sim-model"]["api_base"]
        change = CatalogueChange.objects.filter(alias="sim-model", actor_label="manage.py seed_demo").get()
        assert change.changes["api_base"][1] == entry.api_base
        assert entry.input_cost_per_token == Decimal("0.000001")  # only the endpoint follows the settings
    finally:
        announce_catalogue_change()  # the edit is rolled back with the test
