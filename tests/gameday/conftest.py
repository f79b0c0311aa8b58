"""The game day: the three incident playbooks rehearsed against the real stack — a web process and a Celery
worker of their own (settings `convosuite.settings.gameday`: the test settings with the test-only fault hooks
on, which needs DEBUG, and a 3-second breaker cooldown), on their own Celery queue, with the session's
PostgreSQL, Redis and provider simulator. Browsers are people with real sessions: a session row bound to the
tenant, as the identity provider's sign-in would leave it.

Each rehearsal adds a row to the report table printed at the end of the run (`make gameday`)."""

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django_tenants.utils import schema_context

from accounts.middleware import SESSION_TENANT_KEY
from accounts.models import User
from devtools.llm_simulator.testing import SimulatorControl
from gateway.testing import reset_circuit_breakers
from lifecycle.actions import do_create_tenant
from tenants.models import Tenant
from tests.support import processes

REPORT = Path(__file__).resolve().parents[2] / "test-artifacts" / "gameday" / "report.json"
ROWS: list[dict[str, Any]] = []


@dataclass
class GameDay:
    web_port: int
    simulator: SimulatorControl
    queue: str
    started: float = field(default_factory=time.monotonic)

    def host(self, tenant: Tenant | str) -> str:
        slug = tenant if isinstance(tenant, str) else tenant.schema_name
        # Host names have no underscores (Django refuses them): the domains use hyphens.
        return f"localhost:{self.web_port}" if slug == "public" else f"{domain_of(slug)}:{self.web_port}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def browser(self, tenant: Tenant, user: User | None = None) -> "Browser":
        return Browser(self, tenant, user)

    def new_tenant(self, prefix: str) -> Tenant:
        slug = f"{prefix}_{uuid.uuid4().hex[:8]}"
        return do_create_tenant(slug=slug, name=f"Game day {prefix} {slug[-8:]}", domains=[domain_of(slug)])


def domain_of(slug: str) -> str:
    return f"{slug.replace('_', '-')}.localhost"


class Browser:
    """A person at a browser: a requests session on the real web process, signed in to one tenant."""

    def __init__(self, day: GameDay, tenant: Tenant, user: User | None) -> None:
        self.day, self.tenant = day, tenant
        self.http = requests.Session()
        self.http.headers["Host"] = day.host(tenant)
        if user is not None:
            self.sign_in(user)

    def sign_in(self, user: User) -> None:
        with schema_context(self.tenant.schema_name):
            store = SessionStore()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = "accounts.oidc.TenantOIDCBackend"
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store[SESSION_TENANT_KEY] = self.tenant.schema_name
            store.create()
        self.http.cookies.set("sessionid", str(store.session_key))
        self.get("/chat/")  # the CSRF cookie

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.day.url(path), allow_redirects=False, timeout=30, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        token = self.http.cookies.get("csrftoken", "")
        return self.http.post(
            self.day.url(path), data=data or {}, headers={"X-CSRFToken": token}, allow_redirects=False,
            timeout=30, **kwargs,
        )  # fmt: skip


@pytest.fixture(scope="package")
def gameday(
    stack_env: dict[str, str], simulator: SimulatorControl, tenants: dict[str, Tenant]
) -> Iterator[GameDay]:
    queue = f"gameday-{uuid.uuid4().hex[:6]}"
    env = {
        **stack_env,
        "DJANGO_SETTINGS_MODULE": "convosuite.settings.gameday",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "GATEWAY_BREAKER_COOLDOWN_SECONDS": "3",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    web_port = processes.free_port()
    worker = processes.start_worker("gameday-worker", env, concurrency=4, extra_args=("--pool", "threads"))
    web = None
    try:
        web = processes.start_web(web_port, env)
        yield GameDay(web_port=web_port, simulator=simulator, queue=queue)
    finally:
        if web is not None:
            processes.stop(web)
        processes.stop(worker)


@pytest.fixture
def day(gameday: GameDay, committed_db: None) -> Iterator[GameDay]:
    gameday.simulator.reset()
    reset_circuit_breakers()
    gameday.started = time.monotonic()
    yield gameday
    gameday.simulator.reset()
    reset_circuit_breakers()


COLUMNS = ["rehearsal", "result", "seconds", "traffic", "detection", "containment", "evidence"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    if call.when == "call":
        item.stash[_PASSED] = outcome.passed
    return outcome


_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def row(request: pytest.FixtureRequest, day: GameDay) -> Iterator[dict[str, Any]]:
    """The rehearsal's line in the report; written whether it passed or not."""
    line: dict[str, Any] = {"rehearsal": request.node.name.removeprefix("test_").replace("_", " ")[:40]}
    yield line
    line["result"] = "PASS" if request.node.stash.get(_PASSED, False) else "FAIL"
    line["seconds"] = round(time.monotonic() - day.started, 1)
    ROWS.append(line)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(ROWS, indent=2, default=str))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in ROWS)) for c in COLUMNS}
    terminalreporter.section("game day report")
    terminalreporter.write_line(" | ".join(c.ljust(widths[c]) for c in COLUMNS))
    terminalreporter.write_line("-+-".join("-" * widths[c] for c in COLUMNS))
    for line in ROWS:
        terminalreporter.write_line(" | ".join(str(line.get(c, "")).ljust(widths[c]) for c in COLUMNS))
