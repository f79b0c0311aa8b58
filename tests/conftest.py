"""Shared fixtures. Tests run against the real services: PostgreSQL (a test database created by
pytest-django, migrated by django-tenants), Redis, a Celery worker process, the development identity
provider and the provider simulator, each in its own process."""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from accounts.middleware import SESSION_TENANT_KEY
from accounts.models import User
from catalogue.models import CatalogueEntry
from devtools.idp.testing import DEMO_USERS_FILE, start_idp, stop_idp
from devtools.llm_simulator.testing import SimulatorControl, start_simulator, stop_simulator
from gateway.catalogue import do_seed_catalogue
from gateway.config import announce_catalogue_change, forget_catalogue_cache
from gateway.testing import (
    forget_gateway_state,
    reset_circuit_breakers,
    restore_shared_tenant_policy,
    seed_simulated_catalogue,
)
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.factories import UserFactory
from tests.support import processes
from tests.support.local_model import start_local_model

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
TEST_CLIENT_SECRET = "test-secret"


@pytest.fixture(scope="session")
def tenants(django_db_setup: None, django_db_blocker: Any) -> dict[str, Tenant]:
    """The platform tenant and two customer tenants, committed once for the whole session."""
    with django_db_blocker.unblock():
        forget_gateway_state()  # counters of an earlier run's (since dropped) test database
        # The catalogue of the test settings (the simulator fixture points its entries at the simulator).
        do_seed_catalogue(acting_label="tests")
        forget_catalogue_cache()
        created = {
            "public": do_create_tenant(slug="public", name="Platform", domains=["localhost", "testserver"]),
            "acme": do_create_tenant(slug="acme", name="Acme Corporation", domains=["acme.localhost"]),
            "globex": do_create_tenant(slug="globex", name="Globex Industries", domains=["globex.localhost"]),
        }
        _restore_shared_tenants(created)
        return created


def _restore_shared_tenants(tenants: dict[str, Tenant]) -> None:
    """acme and globex are shared by the whole session: their gateway policy (allow-list, kill switch,
    budgets, limits, time zone) and the circuit breakers go back to the known baseline, so that a test
    that changes them (and fails before undoing it) cannot break the tests after it."""
    for slug in ("acme", "globex"):
        with tenant_context(tenants[slug]):
            restore_shared_tenant_policy(tenants[slug].schema_name)


@pytest.fixture
def acme(tenants: dict[str, Tenant]) -> Tenant:
    return tenants["acme"]


@pytest.fixture
def globex(tenants: dict[str, Tenant]) -> Tenant:
    return tenants["globex"]


@pytest.fixture(autouse=True)
def _back_to_public_schema() -> Iterator[None]:
    yield
    connection.set_schema_to_public()  # type: ignore[attr-defined]


@pytest.fixture
def committed_db(tenants: dict[str, Tenant], django_db_blocker: Any) -> Iterator[None]:
    """Database access without a wrapping transaction, for tests whose data other processes must see.
    Such tests create their own users, so nothing they leave behind is shared with another test."""
    with django_db_blocker.unblock():
        _restore_shared_tenants(tenants)
        yield
        _restore_shared_tenants(tenants)


def make_member(tenant: Tenant, **fields: Any) -> User:
    with tenant_context(tenant):
        return UserFactory.create(**fields)  # type: ignore[no-any-return]


def client_for(tenant: Tenant, user: User | None = None) -> Client:
    """A Django test client on the tenant's domain, signed in as `user` with a session bound to the tenant
    exactly as a real sign-in binds it."""
    domain = tenant.get_primary_domain().domain
    client = Client(HTTP_HOST=domain)
    if user is not None:
        with schema_context(tenant.schema_name):
            client.force_login(user, backend="accounts.oidc.TenantOIDCBackend")
            session = client.session
            session[SESSION_TENANT_KEY] = tenant.schema_name
            session.save()
    return client


# --- the running stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    web_port: int
    issuer: str
    simulator: SimulatorControl
    env: dict[str, str]
    # The identity provider's users (a copy of the demo users): a test may add one for a tenant it onboards;
    # the provider reads the file again at the next sign-in.
    users_file: Path

    def url(self, tenant_slug: str, path: str = "/") -> str:
        return f"http://{tenant_slug}.localhost:{self.web_port}{path}"


@pytest.fixture(scope="session")
def simulator(tenants: dict[str, Tenant], django_db_blocker: Any) -> Iterator[SimulatorControl]:
    port = processes.free_port()
    process = start_simulator(port)
    base = f"http://127.0.0.1:{port}"
    # The catalogue of the test settings, in the database: in-process gateway calls (unit tests) and the
    # worker process both read it there, and talk to this simulator.
    with django_db_blocker.unblock():
        seed_simulated_catalogue(f"{base}/v1")
    try:
        yield SimulatorControl(base)
    finally:
        stop_simulator(process)


@pytest.fixture
def sim(simulator: SimulatorControl) -> SimulatorControl:
    simulator.reset()
    reset_circuit_breakers()  # a provider failure of one test must not open the circuit for the next
    return simulator


@pytest.fixture(scope="session")
def stack_env(
    simulator: SimulatorControl, tenants: dict[str, Tenant], django_db_blocker: Any
) -> dict[str, str]:
    db = connection.settings_dict
    with django_db_blocker.unblock():
        simulator_base = CatalogueEntry.objects.get(alias="sim-model").api_base
    return {
        "DJANGO_SETTINGS_MODULE": "convosuite.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "GATEWAY_SIMULATOR_BASE": simulator_base,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "OIDC_CLIENT_SECRET": TEST_CLIENT_SECRET,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str]) -> Iterator[None]:
    # Start from an empty broker database so no task of an earlier run is delivered into this one. Under
    # pytest-xdist the other workers share the database: empty only this worker's own queue.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    if "PYTEST_XDIST_WORKER" in os.environ:
        broker.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    else:
        broker.flushdb()
    process = processes.start_worker("worker", stack_env)
    try:
        yield
    finally:
        processes.stop(process)


@pytest.fixture(scope="session")
def stack(
    stack_env: dict[str, str], worker: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Identity provider + web server + worker + simulator, all real processes."""
    web_port, idp_port = processes.free_port(), processes.free_port()
    hosts = [f"{slug}.localhost:{web_port}" for slug in ("acme", "globex")] + [f"localhost:{web_port}"]
    idp_dir = tmp_path_factory.mktemp("idp")
    users_file = idp_dir / "users.json"
    users_file.write_text(DEMO_USERS_FILE.read_text())
    idp_process, issuer = start_idp(
        idp_port,
        idp_dir / "data",
        redirect_uris=[f"http://{host}/oidc/callback/" for host in hosts],
        post_logout_uris=[f"http://{host}/" for host in hosts],
        users_file=users_file,
        client_secret=TEST_CLIENT_SECRET,
        # As make up runs it: tenants onboarded during the session sign in too.
        tenant_hosts=[f"*.localhost:{web_port}"],
    )
    env = {**stack_env, "OIDC_ISSUER": issuer}
    web_process = None
    try:
        web_process = processes.start_web(web_port, env)
        yield Stack(
            web_port=web_port,
            issuer=issuer,
            simulator=SimulatorControl(stack_env["GATEWAY_SIMULATOR_BASE"].removesuffix("/v1")),
            env=env,
            users_file=users_file,
        )
    finally:
        if web_process is not None:
            processes.stop(web_process)
        stop_idp(idp_process)


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    def wait(condition: Callable[[], Any], timeout: float = 30, message: str = "condition") -> Any:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {message}")

    return wait


@pytest.fixture(scope="session")
def local_model(tenants: dict[str, Tenant], django_db_blocker: Any) -> Iterator[str]:
    """The real local model (SmolLM2 on llama.cpp) on a free port; the catalogue's smollm2 entry points at it
    (committed and announced, so the web and worker processes use it too). Yields its base URL."""
    port = processes.free_port()
    process = start_local_model(port)
    base = f"http://127.0.0.1:{port}/v1"
    with django_db_blocker.unblock():
        CatalogueEntry.objects.filter(alias="smollm2").update(api_base=base)
        announce_catalogue_change()
    try:
        yield base
    finally:
        processes.stop(process)


# --- markers: what each test needs, from the fixtures it uses (docs/development.md, "Tests") -----------------
# unit: nothing but Python; db: PostgreSQL (and Redis through the gateway's counters); processes: a child process
# (provider simulator, Celery worker, identity provider, web server); browser: Chromium. `pytest -m unit` runs in
# seconds without any service. A test gets the heaviest that applies.
PROCESS_FIXTURES = frozenset({"simulator", "sim", "stack_env", "worker", "stack", "local_model"})
DB_FIXTURES = frozenset({"django_db_setup", "db", "transactional_db"})
# Tests that start a process or reach a service themselves, without a fixture saying so.
PROCESS_MODULES = frozenset({"tests/devtools/test_idp.py", "tests/devtools/test_llm_simulator.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        path = Path(str(item.path)).relative_to(REPO_ROOT).as_posix()
        if item.get_closest_marker("browser"):
            continue
        if fixtures & PROCESS_FIXTURES or path in PROCESS_MODULES:
            item.add_marker(pytest.mark.processes)
        elif fixtures & DB_FIXTURES or item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.db)
        else:
            item.add_marker(pytest.mark.unit)
