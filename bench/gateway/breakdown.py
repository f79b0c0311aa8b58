"""Where the gateway's time goes: CPU (calling thread) and wall time of each step of gateway.complete,
measured one step at a time, sequentially, against the simulator (latency 0). Prints a table.

    export DATABASE_URL=... CELERY_BROKER_URL=...        # as for bench/gateway/overhead.py (run it first once)
    python bench/gateway/breakdown.py [--calls 200] [--limit-set-calls] [--statements]

--limit-set-calls: with django-tenants' TENANT_LIMIT_SET_CALLS on (one SET search_path per tenant switch).
--statements: also print the SQL statements one finish (UPDATE + seal into the chain) sends.
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from devtools.llm_simulator.testing import free_port, start_simulator, stop_simulator  # noqa: E402
from gateway import breaker, config, policy, protocol, provider, routing  # noqa: E402
from gateway.testing import seed_simulated_catalogue  # noqa: E402
from tenants.models import Tenant  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What are the opening hours of the office on Fridays?"},
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--limit-set-calls", action="store_true")
    parser.add_argument("--statements", action="store_true")
    options = parser.parse_args()
    calls = options.calls
    settings.TENANT_LIMIT_SET_CALLS = options.limit_set_calls  # django-tenants reads it per cursor
    port = free_port()
    simulator = start_simulator(port)
    base = f"http://127.0.0.1:{port}/v1"
    seed_simulated_catalogue(base)
    litellm = provider.litellm_module()
    tenant = Tenant.objects.get(schema_name="bench")  # created by bench/gateway/overhead.py
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}

    def step(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started_cpu, started = time.thread_time(), time.perf_counter()
        result = fn(*args, **kwargs)
        cpu.setdefault(name, []).append((time.thread_time() - started_cpu) * 1000)
        wall.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return result

    def checked_route() -> config.ModelRoute:
        # What one call in each GATEWAY_CATALOGUE_CHECK_SECONDS pays: a Redis GET of the version.
        if config._snapshot is not None:
            config._snapshot.checked_at = 0.0
        return config.get_model_route("sim-model")

    with tenant_context(tenant):
        for _ in range(calls + 20):
            request_id = uuid.uuid4()
            call_id = step(
                "claim (INSERT started)", protocol.claim, request_id, None, "sim-model", MESSAGES, "bench"
            )
            snapshot = step("policy read (cached)", policy.load_policy, "bench", max_age=1.0)
            step("prompt token estimate", config.get_model_route("sim-model").counter.prompt_bound, MESSAGES)
            reservation = step(
                "reserve (Lua)", policy.reserve, tenant_schema="bench", request_id=request_id, user_id=None,
                model="sim-model", prompt_tokens=30, max_tokens=64, policy=snapshot,
            )  # fmt: skip
            step("breaker read (cached)", breaker.states, ["sim-model"], max_age=1.0)
            step("catalogue route (cached)", config.get_model_route, "sim-model")
            step("catalogue version check", checked_route)
            step(
                "Router call",
                routing.router().completion,
                model="sim-model",
                messages=MESSAGES,
                max_tokens=64,
            )
            step(
                "direct litellm call", litellm.completion, model="openai/sim-model", api_base=base, api_key="k",
                messages=MESSAGES, max_tokens=64, timeout=5, num_retries=0,
            )  # fmt: skip
            step(
                "finish (UPDATE, durable)",
                protocol.finish_record,
                call_id,
                status="ok",
                tokens_in=30,
                tokens_out=8,
            )
            step(
                "settle (Lua)",
                policy.settle,
                reservation,
                tokens_in=30,
                tokens_out=8,
                cost=Decimal("0.00005"),
            )
            step("SELECT 1 (reference)", lambda: connection.cursor().execute("SELECT 1"))
    print(f"{'step':<26} | {'CPU mean ms':>11} | {'wall p50 ms':>11} | {'wall p95 ms':>11}")
    print("-" * 68)
    for name in cpu:
        c, w = cpu[name][20:], sorted(wall[name][20:])
        print(
            f"{name:<26} | {statistics.mean(c):>11.3f} | {statistics.median(w):>11.3f} | {w[int(len(w) * 0.95)]:>11.3f}"
        )
    if options.statements:
        print_finish_statements(tenant)
    stop_simulator(simulator)


def print_finish_statements(tenant: Tenant) -> None:
    def show(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        print("  " + " ".join(sql.split())[:140])
        return execute(sql, params, many, context)

    with tenant_context(tenant):
        call_id = protocol.claim(uuid.uuid4(), None, "sim-model", MESSAGES, "bench")
        print("statements of one finish_record:")
        with connection.execute_wrapper(show):
            protocol.finish_record(call_id, status="ok", tokens_in=30, tokens_out=8)


if __name__ == "__main__":
    main()
