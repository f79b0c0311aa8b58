"""Knowledge bases, documents (with versions) and chunks, all in the tenant's schema.

Chunk.embedding is a pgvector column without a fixed dimension, because each knowledge base records its own
embedding model and dimension. HNSW indexes need a fixed dimension, so the migration creates one partial
expression index per supported dimension (`(embedding::vector(N)) vector_cosine_ops WHERE dimension = N`)
in every tenant schema, and retrieval queries use exactly that expression and predicate (docs/knowledge.md).
"""

import uuid

from django.db import models
from pgvector.django import VectorField

from keys.fields import EncryptedTokenField

# Dimensions with an HNSW index in every tenant schema (pgvector indexes `vector` up to 2,000 dimensions).
INDEXED_DIMENSIONS = (384, 768, 1024, 1536)


class KnowledgeBase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=500, blank=True)
    # An alias from settings.KNOWLEDGE_EMBEDDING_MODELS; the dimension is copied from it when chosen, so a
    # later change of the settings cannot silently mix dimensions inside one knowledge base.
    embedding_model = models.CharField(max_length=80)
    embedding_dimension = models.PositiveSmallIntegerField()
    # Until agents choose knowledge bases (prompts issue), chat uses every knowledge base flagged here.
    use_in_chat_by_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=255)
    # The version whose chunks answer queries; a new version takes over only once it is ready.
    active_version = models.ForeignKey(
        "DocumentVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    latest_version = models.ForeignKey(
        "DocumentVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "created_at"]

    def __str__(self) -> str:
        return self.name


class DocumentVersion(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        PARSING = "parsing", "Parsing"
        EMBEDDING = "embedding", "Embedding"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    file_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120, blank=True)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # The uploaded file until it is parsed (then emptied), and the extracted text, both encrypted with the
    # tenant's key (knowledge.crypto_seam). The text is kept so a model change can re-embed without a re-upload.
    upload_token = EncryptedTokenField(blank=True)
    text_token = EncryptedTokenField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    error = models.CharField(max_length=500, blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_embedded = models.PositiveIntegerField(default=0)
    # The model the chunks of this version were (or are being) embedded with.
    embedded_with = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["document", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="knowledge_version_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.file_name} v{self.number}"

    @property
    def progress_percent(self) -> int:
        if self.state == self.State.READY:
            return 100
        if not self.chunks_total:
            return 0
        return min(99, self.chunks_embedded * 100 // self.chunks_total)

    @property
    def is_settled(self) -> bool:
        return self.state in (self.State.READY, self.State.FAILED)


class Chunk(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    version = models.ForeignKey(DocumentVersion, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text_token = EncryptedTokenField()  # encrypted chunk text
    embedding_model = models.CharField(max_length=80)
    dimension = models.PositiveSmallIntegerField()
    embedding = VectorField()  # no fixed dimension: see the module docstring
    # Written while a version is being embedded; switched on with the version becoming active.
    searchable = models.BooleanField(default=False)

    class Meta:
        ordering = ["version", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "embedding_model", "ordinal"], name="knowledge_chunk_once_per_model"
            )
        ]
        indexes = [models.Index(fields=["knowledge_base", "searchable"], name="knowledge_chunk_kb_idx")]

    def __str__(self) -> str:
        return f"chunk {self.ordinal} of {self.version_id}"
