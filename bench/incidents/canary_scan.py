"""What the incident tooling adds to each model call, in process (a diagnostic: the gateway's own per-call
overhead, measured over HTTP by bench/gateway/overhead.py, is the figure it is compared with).

- the cross-tenant screen (gateway.screening.screen): one pass over every message of a typical chat prompt
  (system text with its marker, 12 history messages, 4 knowledge passages: ~9 KB), with the markers of 2, 200
  and 2,000 tenants in the automaton; a prompt with no marker at all (an API call) takes the fast path;
- the stream guard (StreamScreen.feed) over a 1,000-character answer in 3-character chunks;
- the anomaly watch (incidents.anomalies.observe_call): one pipelined Redis round trip, caches warm.

    export CELERY_BROKER_URL=redis://127.0.0.1:6379/<n>      # a Redis database of your own
    python bench/incidents/canary_scan.py [--repeat 2000]
"""

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from gateway import screening  # noqa: E402
from gateway.hooks import CallObserved  # noqa: E402
from incidents import anomalies  # noqa: E402

PASSAGE = (
    "The travel policy says economy class for flights under six hours, with exceptions approved by a manager. "
    * 7
)


def register(tenants: int) -> dict[str, str]:
    markers = {f"t{i}": screening.CANARY_PREFIX + secrets.token_hex(12) for i in range(tenants)}
    canaries = [
        screening.Canary(token=t, owner=o, kind="prompt", canary_id=i)
        for i, (o, t) in enumerate(markers.items())
    ]
    screening.register(
        load_canaries=lambda: canaries, on_hit=lambda report: "INC-0", marker_for=lambda s, k: markers[s]
    )
    screening.screen("t0", ["warm up"])  # builds the automaton once
    return markers


def chat_prompt(marker: str) -> list[str]:
    system = f"You are the assistant of Acme. Answer briefly and politely.\n\n(Internal reference {marker}; never repeat it.)"
    history = [f"Question {n}: what does the policy say about trip {n}? " * 4 for n in range(12)]
    context = "\n\n".join(f"<<<PASSAGE {n}>>> {PASSAGE} <<<END PASSAGE {n}>>>" for n in range(4))
    return [system, *history, context]


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat
    rows = []
    for tenants in (2, 200, 2000):
        markers = register(tenants)
        texts = chat_prompt(markers["t0"])
        size = sum(len(t) for t in texts)
        rows.append((f"screen chat prompt ({size / 1024:.1f} KB, own marker), {tenants} tenants",
                     *timed(lambda texts=texts: screening.screen("t0", texts), repeat)))  # fmt: skip
        plain = [t.replace(markers["t0"], "") for t in texts]
        rows.append(
            (
                f"screen API prompt (no marker), {tenants} tenants",
                *timed(lambda plain=plain: screening.screen("t0", plain), repeat),
            )
        )
    answer = ("The policy allows economy class for short flights. " * 20)[:1000]
    chunks = [answer[i : i + 3] for i in range(0, len(answer), 3)]

    def guard_stream() -> None:
        guard = screening.StreamScreen("t0")
        for chunk in chunks:
            guard.feed(chunk)
        guard.finish()

    median, p99 = timed(guard_stream, max(200, repeat // 10))
    rows.append((f"stream guard, whole answer ({len(chunks)} chunks)", median, p99))
    rows.append(("stream guard, per chunk", median / len(chunks), p99 / len(chunks)))

    schema = "bench_tenant"
    connection.set_schema(schema)  # type: ignore[attr-defined]
    anomalies._settings_cache[schema] = (time.monotonic() + 1e9, {
        **{name: True for name in anomalies.EDITABLE_FIELDS if name.endswith("_enabled")},
        **{name: "alert" for name in anomalies.EDITABLE_FIELDS if name.endswith("_action")},
        "spend_multiplier": 5, "spend_min_tokens_per_minute": 10**9, "new_key_hours": 24,
        "new_key_calls_per_minute": 10**9, "refused_per_minute": 10**9, "outage_emails": False,
    })  # fmt: skip
    anomalies._baselines[schema] = (time.monotonic() + 1e9, anomalies.Baseline(
        busy_minute_tokens=10**9, history_days=10, hours=list(range(24)), models=["sim-model"], tpm_limit=10**9,
    ))  # fmt: skip
    observation = CallObserved(schema, "chat", 1, "sim-model", tokens=300)
    rows.append(
        (
            "anomaly watch per call (1 Redis round trip)",
            *timed(lambda: anomalies.observe_call(observation), repeat),
        )
    )

    print(f"{'what':<62} {'median µs':>10} {'p99 µs':>10}")
    for what, median, p99 in rows:
        print(f"{what:<62} {median:>10.1f} {p99:>10.1f}")


if __name__ == "__main__":
    main()
