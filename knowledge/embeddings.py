"""Where embeddings come from: one seam, two implementations.

`backend_for(knowledge_base)` picks the implementation from the knowledge base's model alias
(settings.KNOWLEDGE_EMBEDDING_MODELS). The local model runs in the calling process (worker or web);
provider models go through the gateway, which records and budgets the call like any other model call.
"""

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from django.conf import settings

from gateway.embeddings import embed
from gateway.errors import GatewayError
from knowledge.minilm import ModelFilesMissing, shared_encoder
from tenants.context import current_schema


class EmbeddingUnavailable(RuntimeError):
    """The embedding model cannot be used right now; `user_message` is safe to show to a tenant admin."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UnknownEmbeddingModel(ValueError):
    pass


@dataclass(frozen=True)
class EmbeddingModelChoice:
    alias: str
    label: str
    dimensions: int
    backend: str  # "local" or "gateway"
    gateway_model: str = ""


def embedding_model_choices() -> list[EmbeddingModelChoice]:
    return [
        EmbeddingModelChoice(
            alias=alias,
            label=str(spec.get("label", alias)),
            dimensions=int(str(spec["dimensions"])),
            backend=str(spec["backend"]),
            gateway_model=str(spec.get("gateway_model", "")),
        )
        for alias, spec in settings.KNOWLEDGE_EMBEDDING_MODELS.items()
    ]


def get_embedding_model(alias: str) -> EmbeddingModelChoice:
    for choice in embedding_model_choices():
        if choice.alias == alias:
            return choice
    raise UnknownEmbeddingModel(f"Unknown embedding model {alias!r}.")


class EmbeddingBackend(Protocol):
    alias: str
    dimensions: int

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text (cosine distance is what the index measures)."""
        ...

    def embed_query(self, text: str) -> np.ndarray: ...


class LocalMiniLMBackend:
    """all-MiniLM-L6-v2 in this process (knowledge/minilm.py); loads once per process on first use."""

    def __init__(self, alias: str, dimensions: int) -> None:
        self.alias = alias
        self.dimensions = dimensions

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        try:
            return shared_encoder().encode(texts)
        except ModelFilesMissing as missing:
            raise EmbeddingUnavailable(
                "The local embedding model is not installed on this server."
            ) from missing

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class GatewayEmbeddingBackend:
    """A provider's embedding model through gateway.embed (recorded and budgeted there)."""

    def __init__(self, alias: str, dimensions: int, gateway_model: str, user_id: int | None = None) -> None:
        self.alias = alias
        self.dimensions = dimensions
        self.gateway_model = gateway_model
        self.user_id = user_id

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        try:
            result: Any = embed(
                tenant_schema=current_schema(),
                request_id=uuid.uuid4(),
                user_id=self.user_id,
                model=self.gateway_model,
                inputs=texts,
            )
        except GatewayError as failure:
            raise EmbeddingUnavailable(failure.user_message) from failure
        vectors = np.asarray(getattr(result, "vectors", result), dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise EmbeddingUnavailable(
                f"The embedding model returned vectors of shape {vectors.shape}, expected "
                f"{len(texts)} x {self.dimensions}."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def backend_for_model(alias: str, *, user_id: int | None = None) -> EmbeddingBackend:
    choice = get_embedding_model(alias)
    if choice.backend == "local":
        return LocalMiniLMBackend(choice.alias, choice.dimensions)
    if choice.backend == "gateway":
        return GatewayEmbeddingBackend(choice.alias, choice.dimensions, choice.gateway_model, user_id)
    raise UnknownEmbeddingModel(f"Embedding model {alias!r} has an unknown backend {choice.backend!r}.")
