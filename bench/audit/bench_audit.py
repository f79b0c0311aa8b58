"""Audit evidence benchmark: export and verification speed at scale, and the cost of the chain lock.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_<you>
    DJANGO_SETTINGS_MODULE=convosuite.settings.test python bench/audit/bench_audit.py --records 1000000

1. Generates N chained model-call records in a dedicated tenant (bench_audit) of the DATABASE_URL database:
   hashes computed in Python with the production chain code, rows loaded with COPY. Re-runs reuse them.
2. Exports them with `manage.py export_model_calls` (a child process) at 10% of N and at N: records/s and
   peak RSS, so "flat memory" shows as equal peaks for 10x the records.
3. Verifies both files with verifier/verify_export.py (a child process): records/s and peak RSS.
4. Chain lock cost: the record write (append_to_chain: advisory lock, head read, hash, insert, commit)
   against a plain INSERT of the same row into an unchained copy of the table, at 1 and 16 threads; and
   gateway.complete throughput at 16 threads against the provider simulator.
Prints a table; docs/benchmarks.md records the figures next to this command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")  # one INFO line per model call would drown the table

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections, connection, transaction  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from audit.chain import GENESIS_HASH, append_to_chain, hash_row, read_head  # noqa: E402
from gateway.models import ModelCall  # noqa: E402
from keys.crypto import active_key_id, encrypt_text  # noqa: E402
from lifecycle.actions import do_create_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

TENANT = "bench_audit"
OUT_DIR = ROOT / ".devdata" / "bench-audit"
BASE_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def ensure_database() -> None:
    db = settings.DATABASES["default"]
    params = {"host": db.get("HOST"), "port": db.get("PORT"), "user": db.get("USER")}
    with psycopg.connect(
        dbname="postgres", autocommit=True, **{k: str(v) for k, v in params.items() if v}
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate_schemas", shared=True, verbosity=0)


def bench_tenant() -> Tenant:
    return do_create_tenant(slug=TENANT, name="Audit benchmark", domains=[])


def generate(tenant: Tenant, total: int) -> None:
    with tenant_context(tenant):
        head = read_head(ModelCall)
    if head.seq >= total:
        print(f"reusing {head.seq} records in {TENANT}")
        return
    started = time.perf_counter()
    seq, prev_hash = head.seq, head.record_hash if head.seq else GENESIS_HASH
    # Chain order must be time order (append_to_chain guarantees it; COPY must too): continue after the head.
    first_stamp = (
        max(BASE_TIME, head.timestamp + dt.timedelta(milliseconds=1)) if head.timestamp else BASE_TIME
    )
    columns = [f.attname for f in ModelCall._meta.concrete_fields]
    chain_columns = {"seq", "prev_hash", "record_hash", "chain_salt"}
    defaulted = [f for f in ModelCall._meta.concrete_fields if f.attname not in chain_columns]
    # Looked up before COPY starts: a key lookup is a query, and the connection is busy during COPY.
    key_id = active_key_id(TENANT)
    encrypt_text("warm the data key cache", schema=TENANT, key_id=key_id, remember=False)
    with tenant_context(tenant), connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg cursor, for COPY
        batch = 50_000
        while seq < total:
            with raw.copy(f"COPY gateway_modelcall ({', '.join(columns)}) FROM STDIN") as copy:
                for _ in range(min(batch, total - seq)):
                    seq += 1
                    stamp = first_stamp + dt.timedelta(milliseconds=seq - head.seq)
                    values = {
                        "id": uuid.uuid4(),
                        "created_at": stamp - dt.timedelta(milliseconds=250),
                        "finished_at": stamp,  # the chain timestamp of a model call (sealed when final)
                        "request_id": uuid.uuid4(),
                        "user_id": None,
                        "model_requested": "sim-model",
                        "model_served": "sim-model-2026-01-01",
                        "provider": "simulator",
                        "messages": [
                            {"role": "system", "content": "You are a helpful assistant for the employees."},
                            {
                                "role": "user",
                                "content": f"Summarise ticket #{seq} about the delayed shipment.",
                            },
                        ],
                        "response": f"Ticket #{seq}: the shipment is delayed by two days; the customer was told.",
                        "tool_calls": [],
                        "tokens_in": 42,
                        "tokens_out": 21,
                        "cost": Decimal("0.00008400"),
                        "latency_ms": 250,
                        "status": "ok",
                        "error": "",
                    }
                    for column in defaulted:  # columns added since this bench was written
                        values.setdefault(column.attname, column.get_default())
                    salt = secrets.token_hex(16)
                    record_hash = hash_row(ModelCall, values, seq=seq, prev_hash=prev_hash, salt=salt)
                    values.update(seq=seq, prev_hash=prev_hash, record_hash=record_hash, chain_salt=salt)
                    # Stored as the model stores it: encrypted with the tenant's data key (exports decrypt).
                    # An empty JSON default (no tool calls) is stored blank (keys.fields.EncryptedJSONField).
                    for name in ("messages", "response", "tool_calls"):
                        value = values[name]
                        text = value if isinstance(value, str) else (json.dumps(value) if value else "")
                        values[name] = (
                            encrypt_text(text, schema=TENANT, key_id=key_id, remember=False) if text else ""
                        )
                    copy.write_row([values[c] for c in columns])
                    prev_hash = record_hash
            print(f"  generated {seq}/{total}", flush=True)
    elapsed = time.perf_counter() - started
    print(f"generated {total - head.seq} records in {elapsed:.1f} s")


def run_measured(argv: list[str]) -> tuple[float, int, str]:
    """Run a child process; return (seconds, peak RSS in MiB of that child, stdout)."""
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all waited children: run each measured child from a fresh
    # helper process so earlier children don't mask its peak.
    wrapper = [
        sys.executable,
        "-c",
        "import resource,subprocess,sys;"
        "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
        "print(r.stdout[-2000:]);print(r.stderr[-2000:],file=sys.stderr);"
        "print('PEAK_KB',resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);sys.exit(r.returncode)",
        *argv,
    ]
    result = subprocess.run(wrapper, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())  # noqa: S603
    elapsed = time.perf_counter() - started
    del before
    if result.returncode not in (0,):
        raise RuntimeError(f"{argv[:3]} failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
    peak_kb = int(result.stdout.rsplit("PEAK_KB", 1)[1].split()[0])
    return elapsed, peak_kb // 1024, result.stdout


def export_and_verify(records: int) -> list[tuple[str, int, float, float, float, int]]:
    """(step, records, wall s of the whole process, records/s (wall), records per CPU-second, peak RSS MiB).
    Records per CPU-second is what the code does when it has a core to itself (this 2-core machine is shared)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tenant_context(Tenant.objects.get(schema_name=TENANT)):
        stamps = dict(ModelCall.objects.filter(seq__in=[1, records]).values_list("seq", "finished_at"))
    start, end = stamps[1], stamps[records] + dt.timedelta(microseconds=1)  # seq 1..records exactly
    out = OUT_DIR / f"export-{records}.zip"
    argv = [sys.executable, "manage.py", "export_model_calls", "--tenant", TENANT]
    argv += ["--from", start.isoformat(), "--to", end.isoformat(), "--out", str(out)]
    seconds, peak, stdout = run_measured(argv)
    cpu = float(stdout.rsplit("(cpu ", 1)[1].split()[0])
    rate = float(stdout.rsplit("; ", 1)[1].split()[0].replace(",", ""))
    rows = [("export", records, seconds, rate, records / cpu, peak)]
    seconds, peak, stdout = run_measured([sys.executable, "verifier/verify_export.py", str(out), "--json"])
    verdict = json.loads(stdout[: stdout.rindex("}") + 1])
    # Only the first `records` of a longer chain are exported: the window is complete, the verifier says so.
    assert verdict["records"] == records, verdict
    assert verdict["verified"] and verdict["window_complete"], verdict["problems"][:3]
    rows.append(
        ("verify", records, seconds, records / verdict["seconds"], records / verdict["cpu_seconds"], peak)
    )
    out.unlink()
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _record_writes(job: tuple[bool, int]) -> list[float]:
    """One worker process: `count` record writes, each in its own transaction, timed in ms."""
    chained, count = job
    connection.close()  # never share the parent's connection across fork
    tenant = Tenant.objects.get(schema_name=TENANT)
    timings = []
    with tenant_context(tenant):
        for _ in range(count):
            request_id = uuid.uuid4()
            started = time.perf_counter()
            if chained:
                with transaction.atomic():
                    append_to_chain(
                        ModelCall,
                        request_id=request_id,
                        model_requested="sim-model",
                        messages=[{"role": "user", "content": "hello"}],
                        response="hi",
                        status="ok",
                        cost=Decimal("0.0001"),
                    )
            else:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO bench_unchained (id, created_at, request_id, model_requested, model_served,"
                        " provider, messages, response, tool_calls, tokens_in, tokens_out, cost, latency_ms,"
                        " status, error, seq, prev_hash, record_hash, chain_salt) VALUES (%s, now(), %s,"
                        " 'sim-model', '', '', %s, 'hi', '[]', 0, 0, 0.0001, 0, 'ok', '',"
                        " nextval('bench_unchained_seq'), '', '', '')",
                        [uuid.uuid4(), request_id, json.dumps([{"role": "user", "content": "hello"}])],
                    )
            timings.append((time.perf_counter() - started) * 1000)
    connection.close()
    return timings


def record_write_cost(processes: int, per_process: int, chained: bool) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, writes/s) of recording one model call from `processes` worker processes at once."""
    connection.close()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        started = time.perf_counter()
        results = pool.map(_record_writes, [(chained, per_process)] * processes)
        elapsed = time.perf_counter() - started
    timings = [t for result in results for t in result]
    return statistics.median(timings), percentile(timings, 0.99), len(timings) / elapsed


def lock_cost(tenant: Tenant, per_thread: int) -> list[tuple[str, int, float, float, float]]:
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_unchained")
        # The baseline is the same table, same size, same indexes, minus the chain: no lock, no head read,
        # no hash, no trigger (LIKE ... INCLUDING ALL copies indexes and defaults, not triggers).
        cursor.execute("CREATE TABLE bench_unchained (LIKE gateway_modelcall INCLUDING ALL)")
        cursor.execute("INSERT INTO bench_unchained SELECT * FROM gateway_modelcall")
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS bench_unchained_seq START 100000000")
        cursor.execute("ANALYZE bench_unchained")
    rows = []
    for processes in (1, 4, 16):
        for chained in (False, True):
            per_process = max(10, per_thread // processes)
            p50, p99, rate = record_write_cost(processes, per_process, chained)
            rows.append(("chained append" if chained else "plain INSERT", processes, p50, p99, rate))
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_unchained")
        cursor.execute("DROP SEQUENCE bench_unchained_seq")
    return rows


def gateway_throughput(tenant: Tenant, threads: int, per_thread: int) -> tuple[float, float, float]:
    from devtools.llm_simulator.testing import SimulatorControl, free_port, start_simulator, stop_simulator
    from gateway.service import complete
    from gateway.testing import seed_simulated_catalogue

    port = free_port()
    process = start_simulator(port)
    seed_simulated_catalogue(f"http://127.0.0.1:{port}/v1")
    SimulatorControl(f"http://127.0.0.1:{port}").set_scenario(reply="ok")
    timings: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        close_old_connections()
        local = []
        with tenant_context(tenant):
            for _ in range(per_thread):
                started = time.perf_counter()
                complete(
                    tenant_schema=TENANT,
                    request_id=uuid.uuid4(),
                    user_id=None,
                    model="sim-model",
                    messages=[{"role": "user", "content": "hello"}],
                )
                local.append((time.perf_counter() - started) * 1000)
        connection.close()
        with lock:
            timings.extend(local)

    try:
        with tenant_context(tenant):  # warm-up: LiteLLM's import and first client set-up are not measured
            for _ in range(3):
                complete(
                    tenant_schema=TENANT,
                    request_id=uuid.uuid4(),
                    user_id=None,
                    model="sim-model",
                    messages=[{"role": "user", "content": "warm-up"}],
                )
        workers = [threading.Thread(target=work) for _ in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
    finally:
        stop_simulator(process)
    return statistics.median(timings), percentile(timings, 0.99), len(timings) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lock-writes", type=int, default=400, help="record writes per single-process run")
    parser.add_argument("--skip-export", action="store_true", help="only the chain lock and gateway parts")
    parser.add_argument("--skip-lock", action="store_true", help="only the export and verification part")
    args = parser.parse_args()
    ensure_database()
    tenant = bench_tenant()
    generate(tenant, args.records)

    print(
        "\nExport and verification (child processes; wall s includes start-up, the rates are the work itself)"
    )
    print(
        f"{'step':<8} {'records':>10} {'wall s':>8} {'records/s':>11} {'per CPU-s':>11} {'peak RSS MiB':>13}"
    )
    for size in () if args.skip_export else (args.records // 10, args.records):
        for step, records, seconds, rate, cpu_rate, peak in export_and_verify(size):
            print(f"{step:<8} {records:>10} {seconds:>8.1f} {rate:>11,.0f} {cpu_rate:>11,.0f} {peak:>13}")

    if args.skip_lock:
        return
    print("\nCost of the chain lock on the record write (one model-call row, own transaction)")
    print(f"{'write':<16} {'procs':>7} {'p50 ms':>8} {'p99 ms':>8} {'writes/s':>9}")
    for name, threads, p50, p99, rate in lock_cost(tenant, args.lock_writes):
        print(f"{name:<16} {threads:>7} {p50:>8.2f} {p99:>8.2f} {rate:>9,.0f}")

    p50, p99, rate = gateway_throughput(tenant, 16, 25)
    print("\ngateway.complete, 16 threads, simulator answering at once (chain included)")
    print(f"p50 {p50:.1f} ms  p99 {p99:.1f} ms  {rate:.0f} calls/s")


if __name__ == "__main__":
    main()
