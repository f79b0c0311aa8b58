"""Gateway overhead: gateway.complete versus a direct LiteLLM call to the same simulated provider, in the
same run, at concurrency 1 and 16 (threads), p50/p95/p99. Prints a table.

    createdb -h 127.0.0.1 -U postgres convosuite_gw   # once; any scratch database of yours
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_gw CELERY_BROKER_URL=redis://127.0.0.1:6379/11
    python bench/gateway/overhead.py [--calls 400] [--profile out.html]

Both sides send the same messages and max_tokens to the simulator (latency 0), so the difference is our
policy (Redis policy read + one reservation script), the 'started' record, the Router, the completed
record and the settle script. Overhead per percentile = gateway percentile minus direct percentile.
Batches of the two sides alternate, so drift of the machine hits both equally.
"""

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from devtools.llm_simulator.testing import SimulatorControl, free_port, start_simulator, stop_simulator  # noqa: E402
from gateway.actions import do_set_budget, do_set_rate_limits  # noqa: E402
from gateway.config import get_model_route  # noqa: E402
from gateway.provider import litellm_module  # noqa: E402
from gateway.service import complete  # noqa: E402
from gateway.testing import seed_simulated_catalogue  # noqa: E402
from lifecycle.actions import do_create_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What are the opening hours of the office on Fridays?"},
]
MAX_TOKENS = 64


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return cut[49], cut[94], cut[98]


def prepare_tenant() -> Tenant:
    call_command("migrate_schemas", "--shared", verbosity=0)
    tenant = do_create_tenant(slug="bench", name="Benchmark", domains=["bench.localhost"])
    with tenant_context(tenant):
        do_set_budget(
            daily_tokens=10**12, monthly_tokens=10**12, monthly_spend_cap="1000000", actor_label="bench"
        )
        do_set_rate_limits(requests_per_minute=10**7, tokens_per_minute=10**12, actor_label="bench")
    return tenant


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400, help="calls per side and concurrency level")
    parser.add_argument(
        "--profile", help="write a pyinstrument profile (.html, or .txt) of one sequential gateway batch"
    )
    options = parser.parse_args()

    port = free_port()
    simulator = start_simulator(port)
    base = f"http://127.0.0.1:{port}/v1"
    settings.GATEWAY_POLICY_CACHE_SECONDS = 1.0  # the production default
    SimulatorControl(f"http://127.0.0.1:{port}").set_scenario(reply="The office is open 8-16 on Fridays.")
    litellm = litellm_module()
    tenant = prepare_tenant()
    seed_simulated_catalogue(base)
    route = get_model_route("sim-model")

    def direct() -> float:
        started = time.perf_counter()
        litellm.completion(
            model=route.litellm_model, api_base=base, api_key=route.api_key, messages=MESSAGES,
            max_tokens=MAX_TOKENS, timeout=route.timeout_seconds, num_retries=0,
        )  # fmt: skip
        return (time.perf_counter() - started) * 1000

    def gateway() -> float:
        with tenant_context(tenant):
            started = time.perf_counter()
            complete(
                tenant_schema=tenant.schema_name, request_id=uuid.uuid4(), user_id=None, model="sim-model",
                messages=MESSAGES, max_tokens=MAX_TOKENS, source="bench",
            )  # fmt: skip
            return (time.perf_counter() - started) * 1000

    pools: dict[int, ThreadPoolExecutor] = {}

    def batch(fn, concurrency: int, count: int) -> list[float]:  # type: ignore[no-untyped-def]
        if concurrency == 1:
            return [fn() for _ in range(count)]
        # One long-lived pool per level: each thread keeps its database connection across batches.
        pool = pools.setdefault(concurrency, ThreadPoolExecutor(concurrency))
        return list(pool.map(lambda _: fn(), range(count)))

    def close_pools() -> None:
        for size, pool in pools.items():
            barrier = threading.Barrier(size)

            def close_connection(_: int, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()  # one task per thread: every thread closes its own connection
                connection.close()

            list(pool.map(close_connection, range(size)))
            pool.shutdown()

    for _ in range(30):  # warm both paths: imports, connections, Lua scripts loaded
        direct()
        gateway()
    connection.close()

    rows = []
    profiler = None
    modes = {"gateway": True, "gw-async": False}  # label -> GATEWAY_DURABLE_RECORDS
    for concurrency in (1, 16):
        samples: dict[str, list[float]] = {"direct": [], **{label: [] for label in modes}}
        rounds = 4
        for _ in range(rounds):
            samples["direct"] += batch(direct, concurrency, options.calls // rounds)
            for label, durable in modes.items():
                settings.GATEWAY_DURABLE_RECORDS = durable
                if options.profile and concurrency == 1 and durable and profiler is None:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="disabled")
                    profiler.start()
                    samples[label] += batch(gateway, concurrency, options.calls // rounds)
                    profiler.stop()
                else:
                    samples[label] += batch(gateway, concurrency, options.calls // rounds)
        baseline = percentiles(samples["direct"])
        rows.append((concurrency, "direct", baseline))
        for label in modes:
            measured = percentiles(samples[label])
            rows.append((concurrency, label, measured))
            rows.append(
                (concurrency, "overhead", tuple(m - b for m, b in zip(measured, baseline, strict=True)))
            )

    print(
        f"gateway overhead, {options.calls} calls per side and level, simulator latency 0, {os.cpu_count()} CPUs"
    )
    print("gateway = durable records (default); gw-async = GATEWAY_DURABLE_RECORDS=off")
    print(f"{'concurrency':>11} | {'side':<9} | {'p50 ms':>7} | {'p95 ms':>7} | {'p99 ms':>7}")
    print("-" * 54)
    for concurrency, label, values in rows:
        print(f"{concurrency:>11} | {label:<9} | {values[0]:>7.2f} | {values[1]:>7.2f} | {values[2]:>7.2f}")
    # CPU per call in the calling thread (LiteLLM's logging threads excluded), sequential. At concurrency
    # 16 in one process the GIL serialises this work, so wall-clock overhead grows with it.
    cpu: dict[str, float] = {}
    for label, fn in (("direct", direct), ("gateway", gateway)):
        settings.GATEWAY_DURABLE_RECORDS = True
        started_cpu = time.thread_time()
        for _ in range(200):
            fn()
        cpu[label] = (time.thread_time() - started_cpu) / 200 * 1000
    print(
        f"CPU per call (calling thread): direct {cpu['direct']:.2f} ms, gateway {cpu['gateway']:.2f} ms, "
        f"overhead {cpu['gateway'] - cpu['direct']:.2f} ms"
    )
    close_pools()
    if profiler is not None:
        output = Path(options.profile)
        text = (
            profiler.output_text(unicode=False, color=False)
            if output.suffix == ".txt"
            else profiler.output_html()
        )
        output.write_text(text)
        print(f"profile written to {options.profile}")
    stop_simulator(simulator)


if __name__ == "__main__":
    main()
