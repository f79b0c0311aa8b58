"""Conversation search over encrypted conversations: how the time grows with one person's history.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_<you>
    DJANGO_SETTINGS_MODULE=convosuite.settings.test python bench/chat_search.py

Creates (once; re-runs reuse it) a tenant `bench_search` in the DATABASE_URL database with one person per
history size (conversations x messages of ~300 characters, stored encrypted exactly as the chat stores them),
then times chat.actions.search_conversations for a word found in a few conversations and for one found in
none (the worst case: every message is decrypted and scanned). In-process: a diagnostic of the search's own
cost (two queries, bulk decryption, matching), without the web server in front of it. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from accounts.models import User  # noqa: E402
from chat.actions import search_conversations  # noqa: E402
from chat.models import Conversation, Message  # noqa: E402
from lifecycle.actions import do_create_tenant  # noqa: E402
from tenants.models import Tenant  # noqa: E402

TENANT = "bench_search"
SIZES = [(100, 10), (300, 20), (1000, 20)]
FILLER = (
    "Could you help me draft a short note to the facilities team about the meeting rooms on the third "
    "floor? The projector in room 3B flickers and the booking screen shows the wrong times. "
)


def ensure_tenant() -> Tenant:
    call_command("migrate_schemas", "--shared", verbosity=0)  # quick once done; a fresh database needs it
    tenant = Tenant.objects.filter(schema_name=TENANT).first()
    if tenant is None:
        tenant = do_create_tenant(slug=TENANT, name="Search bench", domains=[f"{TENANT}.localhost"])
    return tenant


def ensure_person(conversations: int, messages: int) -> User:
    username = f"search-{conversations}x{messages}"
    person = User.objects.filter(username=username).first()
    if person is not None:
        return person
    person = User.objects.create(username=username, email=f"{username}@bench.example")
    for number in range(conversations):
        conversation = Conversation.objects.create(owner=person, title=f"Rooms and projectors {number}")
        marker = " kookaburra" if number % 97 == 0 else ""
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                role=Message.Role.USER if turn % 2 == 0 else Message.Role.ASSISTANT,
                content=f"{FILLER}{marker} (turn {turn})",
            )
            for turn in range(messages)
        )
    return person


def timed(person: User, query: str, runs: int) -> tuple[float, float, int]:
    samples, hits = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        hits = len(search_conversations(person, query))
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tenant = ensure_tenant()
    print(f"{'history':>18} {'messages':>9} {'query':>10} {'hits':>5} {'p50 ms':>8} {'p95 ms':>8}")
    with tenant_context(tenant):
        for conversations, messages in SIZES:
            person = ensure_person(conversations, messages)
            for label, query in (("found", "kookaburra"), ("not found", f"absent{uuid.uuid4().hex[:6]}")):
                p50, p95, hits = timed(person, query, args.runs)
                print(
                    f"{f'{conversations} conv x {messages}':>18} {conversations * messages:>9} {label:>10} "
                    f"{hits:>5} {p50:>8.1f} {p95:>8.1f}"
                )


if __name__ == "__main__":
    main()
