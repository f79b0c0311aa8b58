"""The local encoder reproduces sentence-transformers' all-MiniLM-L6-v2 vectors; the provider seam fails
clearly until gateway.embed exists."""

import json
from pathlib import Path

import numpy as np
import pytest
from django_tenants.utils import tenant_context

from devtools.llm_simulator.testing import SimulatorControl
from gateway.models import ModelCall
from knowledge.embeddings import EmbeddingUnavailable, GatewayEmbeddingBackend, backend_for_model
from knowledge.minilm import DIMENSIONS, ModelFilesMissing, _read_safetensors, model_directory, shared_encoder
from tenants.models import Tenant

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "minilm_reference.json").read_text())


def test_local_encoder_matches_sentence_transformers_reference_vectors() -> None:
    vectors = shared_encoder().encode(REFERENCE["texts"])
    expected = np.asarray(REFERENCE["vectors"], dtype=np.float32)
    assert vectors.shape == (3, DIMENSIONS)
    assert np.abs(vectors - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_sentences_are_closer_than_unrelated_ones() -> None:
    a, b, c = shared_encoder().encode(
        [
            "How many days do I have to return an item?",
            "Refunds are accepted within 30 days.",
            "The server room is on floor 3.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_batching_and_order_do_not_change_vectors() -> None:
    texts = [f"sentence {n} " + "word " * n for n in range(40)]
    together = shared_encoder().encode(texts, batch_size=7)
    one_by_one = np.stack([shared_encoder().encode([text])[0] for text in texts[:5]])
    assert np.abs(together[:5] - one_by_one).max() < 1e-5


def test_weights_with_another_checksum_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "model.safetensors"
    copy.write_bytes((model_directory() / "model.safetensors").read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelFilesMissing, match="expected"):
        _read_safetensors(copy, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")


@pytest.mark.django_db
def test_provider_backend_embeds_through_the_gateway_and_records_the_call(
    acme: Tenant, sim: SimulatorControl
) -> None:
    backend = backend_for_model("sim-embedding")
    assert isinstance(backend, GatewayEmbeddingBackend)
    with tenant_context(acme):
        vectors = backend.embed_documents(["hello", "world"])
        calls = list(ModelCall.objects.filter(model_requested="sim-embedding").order_by("-created_at")[:1])
    assert vectors.shape == (2, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-5
    assert calls and calls[0].status == ModelCall.Status.OK
    assert [entry["path"] for entry in sim.requests()] == ["/v1/embeddings"]


@pytest.mark.django_db
def test_provider_backend_reports_a_provider_failure_clearly(acme: Tenant, sim: SimulatorControl) -> None:
    sim.set_scenario(model="sim-embedding", fail="503")
    with tenant_context(acme), pytest.raises(EmbeddingUnavailable, match="unavailable"):
        backend_for_model("sim-embedding").embed_documents(["hello"])
