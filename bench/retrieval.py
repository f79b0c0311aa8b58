"""Knowledge-base retrieval benchmark: 100,000 chunks in one tenant's schema.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/convosuite_bench   # a database of your own
    .venv/bin/python manage.py migrate_schemas --shared --settings=convosuite.settings.test
    .venv/bin/python bench/retrieval.py [--chunks 100000] [--queries 200] [--ef 40,64,100]

What is measured and how (docs/benchmarks.md has the figures):
- Corpus: 2,000 real passages of synthetic but realistic company text (policies, procedures, products,
  built from templates) are embedded with the default local model; 100,000 chunk vectors are made from them
  by adding small Gaussian noise and re-normalising, so the vectors keep the clustered structure of real
  text embeddings (embedding 100,000 passages one by one would take ~30 min on 2 cores and measure the
  encoder, not the index). They are written with COPY into the tenant's own knowledge_chunk table and the
  tenant's HNSW index is rebuilt with the migration's exact definition.
- Queries: questions embedded with the same model (real query vectors), each run through the production
  SQL (knowledge.retrieval._nearest_chunks: the partial expression index, hnsw.ef_search, iterative scan).
- Recall@8: HNSW top-8 against exact top-8 (the same query with index scans disabled).
- Ingest throughput: a fresh document of realistic text through the real ingestion path (parse, chunk,
  embed with the local model, insert), chunks per second.
"""

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "convosuite.settings.test")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

SUBJECTS = [
    "Employees", "Contractors", "Managers", "New hires", "Customers", "Suppliers", "The finance team",
    "The help desk", "Field engineers", "Sales representatives", "Warehouse staff", "Interns",
]  # fmt: skip
ACTIONS = [
    "must submit travel receipts", "can request a replacement laptop", "should report security incidents",
    "may work remotely", "need approval for purchases", "have to complete compliance training",
    "can return unused items", "must renew their access badge", "should back up project files",
    "may carry over vacation days", "need a second signature for invoices", "can book meeting rooms",
]  # fmt: skip
CONDITIONS = [
    "within 30 days", "before the end of the quarter", "through the self-service portal",
    "after their manager approves", "once a year", "using the expense form", "at the front desk",
    "by e-mail to the service desk", "for amounts above 500 euros", "during the probation period",
    "on the first working day of the month", "unless the contract says otherwise",
]  # fmt: skip
TOPICS = [
    "travel", "hardware", "security", "remote work", "procurement", "compliance", "refunds", "access",
    "backups", "vacation", "invoices", "facilities",
]  # fmt: skip
QUESTIONS = [
    "How long do I have to submit travel receipts?", "How do I get a new laptop?",
    "Who do I tell about a phishing e-mail?", "Can I work from home?", "Do purchases need approval?",
    "When is compliance training due?", "Can customers return items?", "My badge expired, what now?",
    "How should I back up my files?", "Can I keep unused vacation days?", "Who signs large invoices?",
    "How do I book a meeting room?",
]  # fmt: skip


def passage(rng: random.Random, number: int) -> str:
    sentences = [
        f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(CONDITIONS)}."
        for _ in range(rng.randint(3, 6))
    ]
    return f"Section {number} ({rng.choice(TOPICS)} policy). " + " ".join(sentences)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--base-passages", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="40,64,100,160")
    parser.add_argument("--noise", type=float, default=0.25, help="noise norm relative to a unit vector")
    parser.add_argument("--embedding-cache", default="", help="reuse the embedded passages (a .npy path)")
    args = parser.parse_args()

    from knowledge.actions import do_create_knowledge_base, do_ingest_document_version, do_upload_documents
    from knowledge.minilm import shared_encoder
    from knowledge.models import Chunk, Document, DocumentVersion, KnowledgeBase
    from knowledge.retrieval import _nearest_chunks
    from lifecycle.actions import do_create_tenant

    rng = random.Random(7)
    tenant = do_create_tenant(slug="bench", name="Benchmark tenant", domains=["bench.localhost"])
    encoder = shared_encoder()

    base_texts = [passage(rng, n) for n in range(args.base_passages)]
    held_out = [passage(rng, args.base_passages + n) for n in range(args.queries)]
    started = time.perf_counter()
    cache = Path(args.embedding_cache) if args.embedding_cache else None
    if cache and cache.exists():
        vectors = np.load(cache)
    else:
        vectors = encoder.encode(base_texts + held_out)
        if cache:
            np.save(cache, vectors)
    base, held_out_vectors = vectors[: len(base_texts)], vectors[len(base_texts) :]
    embed_seconds = time.perf_counter() - started

    with tenant_context(tenant):
        KnowledgeBase.objects.filter(name__startswith="bench-").delete()
        kb = do_create_knowledge_base(f"bench-{uuid.uuid4().hex[:6]}", acting_user=None)
        document = Document.objects.create(knowledge_base=kb, name="corpus.txt")
        version = DocumentVersion.objects.create(
            document=document, number=1, file_name="corpus.txt", size_bytes=0, sha256="-", state="ready"
        )
        noise_rng = np.random.default_rng(11)
        per_dim = args.noise / np.sqrt(384)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS knowledge_chunk_hnsw_384")
            from pgvector.psycopg import register_vector

            raw = connection.connection  # same session, so the tenant's search_path applies
            register_vector(raw)
            with raw.cursor().copy(
                "COPY knowledge_chunk (id, knowledge_base_id, document_id, version_id, ordinal, text_token, "
                "embedding_model, dimension, embedding, searchable) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(
                    ["uuid", "uuid", "uuid", "uuid", "int4", "text", "varchar", "int2", "vector", "bool"]
                )
                for ordinal in range(args.chunks):
                    # A blend of two real passage embeddings plus noise: clustered like real text, but
                    # without exact near-duplicates (which would turn recall into a tie-breaking lottery).
                    source, other = ordinal % len(base), int(noise_rng.integers(len(base)))
                    weight = float(noise_rng.uniform(0.55, 1.0))
                    vector = weight * base[source] + (1 - weight) * base[other]
                    vector = vector + noise_rng.normal(0, per_dim, 384).astype(np.float32)
                    vector /= np.linalg.norm(vector)
                    copy.write_row(
                        [uuid.uuid4(), kb.id, document.id, version.id, ordinal, base_texts[source],
                         "local-minilm", 384, vector, True]
                    )  # fmt: skip
        copy_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(
                "CREATE INDEX knowledge_chunk_hnsw_384 ON knowledge_chunk USING hnsw "
                "((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
                "WHERE dimension = 384 AND searchable"
            )
            cursor.execute("ANALYZE knowledge_chunk")
        index_seconds = time.perf_counter() - started
        total = Chunk.objects.filter(knowledge_base=kb).count()

        # Real query embeddings: the questions, then passages that are not in the corpus.
        query_vectors = np.concatenate([encoder.encode(QUESTIONS), held_out_vectors])[: args.queries]

        from django.conf import settings

        def run(vector: np.ndarray, exact: bool) -> list[uuid.UUID]:
            if exact:
                with connection.cursor() as cursor:
                    cursor.execute("BEGIN")
                    cursor.execute("SET LOCAL enable_indexscan = off")
                    cursor.execute(
                        "SELECT id FROM knowledge_chunk WHERE dimension = 384 AND searchable AND knowledge_base_id = %s "
                        "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 8",
                        [kb.id, "[" + ",".join(f"{x:.7g}" for x in vector) + "]"],
                    )
                    ids = [row[0] for row in cursor.fetchall()]
                    cursor.execute("COMMIT")
                return ids
            return [p.chunk_id for p in _nearest_chunks([kb], "local-minilm", 384, vector, 8)]

        exact = [run(v, exact=True) for v in query_vectors]
        # The plan really uses the tenant's HNSW index:
        with connection.cursor() as cursor:
            literal = "[" + ",".join(f"{x:.7g}" for x in query_vectors[0]) + "]"
            cursor.execute(
                "EXPLAIN SELECT id FROM knowledge_chunk c WHERE c.dimension = 384 AND c.searchable "
                "AND c.embedding_model = 'local-minilm' AND c.knowledge_base_id = ANY(%s) "
                "ORDER BY c.embedding::vector(384) <=> %s::vector(384) LIMIT 8",
                [[kb.id], literal],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
        rows = []
        for ef in [int(x) for x in args.ef.split(",")]:
            settings.KNOWLEDGE_HNSW_EF_SEARCH = ef
            for v in query_vectors[:20]:
                run(v, exact=False)  # warm-up
            latencies, recalls = [], []
            for v, truth in zip(query_vectors, exact, strict=True):
                t0 = time.perf_counter()
                found = run(v, exact=False)
                latencies.append((time.perf_counter() - t0) * 1000)
                recalls.append(len(set(found) & set(truth)) / 8)
            rows.append(
                (ef, statistics.median(latencies), percentile(latencies, 0.95), statistics.mean(recalls))
            )

        # Ingest throughput through the real path (parse, chunk, embed, insert, activate).
        from django.core.files.uploadedfile import SimpleUploadedFile

        text = "\n\n".join(passage(rng, n) for n in range(400))
        [outcome] = do_upload_documents(
            kb, [SimpleUploadedFile("ingest.txt", text.encode())], acting_user=None
        )
        started = time.perf_counter()
        while do_ingest_document_version(outcome.version.id, slice_seconds=3600):
            pass
        ingest_seconds = time.perf_counter() - started
        outcome.version.refresh_from_db()
        ingested = outcome.version.chunks_total

    print(f"chunks in tenant schema {tenant.schema_name!r}: {total:,}")
    print(
        f"passages embedded (corpus seeds + held-out queries): {len(base_texts) + len(held_out):,} in {embed_seconds:.1f} s; COPY {copy_seconds:.1f} s; HNSW build {index_seconds:.1f} s"
    )
    print("plan: " + " / ".join(line.strip() for line in plan.splitlines()[:3]))
    print()
    print(
        f"{'ef_search':>9} | {'p50 ms':>7} | {'p95 ms':>7} | {'recall@8':>8}   ({len(query_vectors)} queries, top-8)"
    )
    print("-" * 48)
    for ef, p50, p95, recall in rows:
        print(f"{ef:>9} | {p50:>7.2f} | {p95:>7.2f} | {recall:>8.3f}")
    print()
    print(
        f"ingest: {ingested} chunks of ~{len(text) // max(ingested, 1)} chars in {ingest_seconds:.1f} s = {ingested / ingest_seconds:.1f} chunks/s (parse+chunk+embed+insert, local model)"
    )


if __name__ == "__main__":
    main()
