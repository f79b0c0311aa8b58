"""Benchmark: time to first token of a chat answer, end to end, as the browser sees it.

Path measured: POST the message to the live web process → on_commit → Celery (Redis) → worker →
gateway.stream → provider simulator → Redis stream → web process (SSE relay) → client. The simulator answers
at once (no latency), so what is left is our pipeline; the provider-side TTFT the gateway recorded
(ModelCall.ttft_ms) is shown next to it.

Run (prints a table; figures go to docs/benchmarks.md with this command):
    DATABASE_URL=... CELERY_BROKER_URL=... python -m pytest bench/streaming/ttft.py -q -s
Knobs: BENCH_SAMPLES (default 40 per concurrency level), BENCH_CONCURRENCY (default "1,4").
"""

import json
import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
from django.conf import settings
from django_tenants.utils import tenant_context

from gateway.models import ModelCall
from tenants.models import Tenant
from tests.conftest import Stack, client_for, make_member

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "40"))
CONCURRENCY = [int(level) for level in os.environ.get("BENCH_CONCURRENCY", "1,4").split(",")]
REPLY = " ".join(f"word{i}" for i in range(20))


@dataclass
class Sample:
    request_id: str
    post_s: float
    sse_open_s: float
    fragment_get_s: float
    ttft_s: float
    total_s: float


class Browser:
    """One signed-in person talking to the live web process over HTTP, like the page's scripts do."""

    def __init__(self, stack: Stack, acme: Tenant) -> None:
        client = client_for(acme, make_member(acme))
        self.base = f"http://127.0.0.1:{stack.web_port}"
        self.host = f"acme.localhost:{stack.web_port}"
        self.http = requests.Session()
        self.cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
        page = self.http.get(
            f"{self.base}/chat/", headers={"Host": self.host}, cookies=self.cookies, timeout=10
        )
        self.cookies["csrftoken"] = page.cookies["csrftoken"]
        match = re.search(r'"X-CSRFToken": "([^"]+)"', page.text)
        assert match, "no CSRF token on the page"
        self.csrf = match.group(1)

    def post(self, path: str, data: dict[str, str] | None = None) -> requests.Response:
        return self.http.post(
            f"{self.base}{path}",
            data=data or {},
            headers={"Host": self.host, "X-CSRFToken": self.csrf, "HX-Request": "true"},
            cookies=self.cookies,
            allow_redirects=False,
            timeout=10,
        )

    def ask_and_time(self) -> Sample:
        conversation = self.post("/chat/new/").headers["Location"].rstrip("/").split("/")[-1]
        started = time.perf_counter()
        fragment = self.post(f"/chat/{conversation}/messages/", {"content": "Benchmark question"}).text
        posted = time.perf_counter()
        message_id = re.search(r'id="message-([0-9a-f-]{36})" data-role="assistant"', fragment)
        assert message_id, fragment[:300]
        first_token = None
        with self.http.get(
            f"{self.base}/chat/{conversation}/messages/{message_id.group(1)}/stream/",
            headers={"Host": self.host, "Accept": "text/event-stream"},
            cookies=self.cookies,
            stream=True,
            timeout=30,
        ) as events:
            opened = time.perf_counter()
            event = ""
            for line in events.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "token" and first_token is None:
                    first_token = time.perf_counter()
                elif line.startswith("data: ") and event == "done":
                    html = json.loads(line.removeprefix("data: "))["html"]
                    assert 'data-status="done"' in html
                    break
        finished = time.perf_counter()
        assert first_token is not None
        # The floor of any web request here: the (cheap) message fragment view, once the answer is stored.
        self.http.get(
            f"{self.base}/chat/{conversation}/messages/{message_id.group(1)}/",
            headers={"Host": self.host},
            cookies=self.cookies,
            timeout=10,
        )
        fragment_got = time.perf_counter()
        return Sample(
            request_id=message_id.group(1),
            post_s=posted - started,
            sse_open_s=opened - posted,
            fragment_get_s=fragment_got - finished,
            ttft_s=first_token - started,
            total_s=finished - started,
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@pytest.mark.usefixtures("committed_db")
def test_bench_stream_time_to_first_token(stack: Stack, acme: Tenant) -> None:
    stack.simulator.reset()
    stack.simulator.set_scenario(reply=REPLY, token_delay_ms=10)
    rows = []
    for level in CONCURRENCY:
        browsers = [Browser(stack, acme) for _ in range(level)]
        browsers[0].ask_and_time()  # warm-up: first LiteLLM import in the worker, connections
        per_browser = max(1, SAMPLES // level)
        with ThreadPoolExecutor(max_workers=level) as pool:
            batches = list(pool.map(lambda b, n=per_browser: [b.ask_and_time() for _ in range(n)], browsers))
        samples = [sample for batch in batches for sample in batch]
        with tenant_context(acme):
            from chat.models import Message

            request_ids = Message.objects.filter(id__in=[s.request_id for s in samples]).values_list(
                "request_id", flat=True
            )
            provider_ttft = [
                call.ttft_ms / 1000
                for call in ModelCall.objects.filter(request_id__in=list(request_ids))
                if call.ttft_ms is not None
            ]
        ttft = [s.ttft_s for s in samples]
        rows.append(
            (
                level,
                len(samples),
                statistics.median(s.post_s for s in samples) * 1000,
                statistics.median(s.sse_open_s for s in samples) * 1000,
                statistics.median(s.fragment_get_s for s in samples) * 1000,
                percentile(ttft, 0.5) * 1000,
                percentile(ttft, 0.95) * 1000,
                percentile(ttft, 0.99) * 1000,
                statistics.median(provider_ttft) * 1000,
                statistics.median(s.total_s for s in samples) * 1000,
            )
        )
    print()
    print("End-to-end time to first token (web -> Celery -> worker -> gateway.stream -> Redis -> SSE), ms")
    print(
        f"{'conc':>4} {'n':>4} {'POST p50':>9} {'SSE open p50':>13} {'plain GET p50':>14} {'TTFT p50':>9} {'p95':>7} {'p99':>7}"
        f" {'provider TTFT p50':>18} {'full answer p50':>16}"
    )
    for level, count, post, sse_open, plain_get, p50, p95, p99, provider, total in rows:
        print(
            f"{level:>4} {count:>4} {post:>9.1f} {sse_open:>13.1f} {plain_get:>14.1f} {p50:>9.1f} {p95:>7.1f} {p99:>7.1f}"
            f" {provider:>18.1f} {total:>16.1f}"
        )


@pytest.mark.django_db
def test_database_is_set_up(acme: Tenant) -> None:
    """pytest-django creates the test database only for sessions with a django_db test; this is that test."""
    assert acme.schema_name == "acme"
