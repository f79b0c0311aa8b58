"""Knowledge-base actions. Views, tasks and tests call these; each state change writes its audit event in
the same transaction, and work for the worker is queued after commit."""

import base64
import hashlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.http import Http404

from audit.actions import do_record_audit_event
from knowledge.chunking import chunk_text
from knowledge.crypto_seam import decrypt_for_tenant, encrypt_for_tenant
from knowledge.embeddings import EmbeddingUnavailable, backend_for_model, get_embedding_model
from knowledge.models import Chunk, Document, DocumentVersion, KnowledgeBase
from knowledge.parsing import DocumentRejected, ParseLimits, check_upload, parse_document
from tenants.context import current_schema
from tenants.task_context import send_tenant_task_on_commit

logger = logging.getLogger(__name__)

EMBED_BATCH = 32


class KnowledgeInputError(ValueError):
    """Input a tenant admin must fix; the message is shown to them."""


class UploadedFileLike(Protocol):
    name: str | None
    size: int | None

    def read(self, size: int = ...) -> bytes: ...


# --- access ---------------------------------------------------------------------------------------------


def access_knowledge_base_by_id(knowledge_base_id: uuid.UUID) -> KnowledgeBase:
    knowledge_base = KnowledgeBase.objects.filter(id=knowledge_base_id).first()
    if knowledge_base is None:
        raise Http404("No such knowledge base.")
    return knowledge_base


def access_document_by_id(knowledge_base: KnowledgeBase, document_id: uuid.UUID) -> Document:
    document = (
        Document.objects.select_related("latest_version", "active_version")
        .filter(id=document_id, knowledge_base=knowledge_base)
        .first()
    )
    if document is None:
        raise Http404("No such document.")
    return document


def access_passage_by_id(user: Any, chunk_id: uuid.UUID) -> Chunk:
    """A passage the user may read: tenant admins any current passage; members those of knowledge bases
    used in chat (the ones their answers cite). Anything else is 404, like a missing passage."""
    chunks = Chunk.objects.select_related("document", "knowledge_base").filter(id=chunk_id, searchable=True)
    if "tenant_admin" not in (getattr(user, "roles", None) or []):
        chunks = chunks.filter(knowledge_base__use_in_chat_by_default=True)
    chunk = chunks.first()
    if chunk is None:
        raise Http404("No such passage.")
    return chunk


@dataclass(frozen=True)
class PassageInContext:
    ordinal: int
    text: str
    cited: bool


def passage_in_context(chunk: Chunk, *, around: int = 1) -> list[PassageInContext]:
    """The cited passage with its neighbours in the same document version (consecutive passages overlap by
    KNOWLEDGE_CHUNK_OVERLAP_CHARS), so the reader sees where the quote sits in the document."""
    neighbours = Chunk.objects.filter(
        version_id=chunk.version_id,
        embedding_model=chunk.embedding_model,
        ordinal__gte=max(0, chunk.ordinal - around),
        ordinal__lte=chunk.ordinal + around,
    ).order_by("ordinal")
    return [
        PassageInContext(ordinal=n.ordinal, text=decrypt_for_tenant(n.text_token), cited=n.id == chunk.id)
        for n in neighbours
    ]


def documents_with_versions(knowledge_base: KnowledgeBase) -> list[Document]:
    return list(
        Document.objects.filter(knowledge_base=knowledge_base)
        .select_related("latest_version", "active_version")
        .order_by("name", "created_at")
    )


# --- knowledge bases ------------------------------------------------------------------------------------


@transaction.atomic
def do_create_knowledge_base(
    name: str, *, acting_user: Any, description: str = "", embedding_model: str | None = None,
    use_in_chat_by_default: bool = False,
) -> KnowledgeBase:  # fmt: skip
    name = " ".join(name.split())
    if not name:
        raise KnowledgeInputError("Give the knowledge base a name.")
    if len(name) > 120:
        raise KnowledgeInputError("Names are limited to 120 characters.")
    if KnowledgeBase.objects.filter(name__iexact=name).exists():
        raise KnowledgeInputError(f"A knowledge base named “{name}” already exists.")
    model = get_embedding_model(embedding_model or settings.KNOWLEDGE_DEFAULT_EMBEDDING_MODEL)
    knowledge_base = KnowledgeBase.objects.create(
        name=name,
        description=description.strip()[:500],
        embedding_model=model.alias,
        embedding_dimension=model.dimensions,
        use_in_chat_by_default=use_in_chat_by_default,
    )
    do_record_audit_event(
        kind="knowledge.base_created",
        actor=acting_user,
        details={"knowledge_base": str(knowledge_base.id), "name": name, "embedding_model": model.alias},
    )
    return knowledge_base


@transaction.atomic
def do_update_knowledge_base_settings(
    knowledge_base: KnowledgeBase, *, acting_user: Any, embedding_model: str, use_in_chat_by_default: bool
) -> KnowledgeBase:
    """Changing the embedding model re-embeds every document (from its stored text; no re-upload)."""
    knowledge_base = KnowledgeBase.objects.select_for_update().get(id=knowledge_base.id)
    try:
        model = get_embedding_model(embedding_model)
    except ValueError as unknown:
        raise KnowledgeInputError("Choose one of the listed embedding models.") from unknown
    changes: dict[str, Any] = {}
    if knowledge_base.use_in_chat_by_default != use_in_chat_by_default:
        changes["use_in_chat_by_default"] = use_in_chat_by_default
        knowledge_base.use_in_chat_by_default = use_in_chat_by_default
    model_changed = knowledge_base.embedding_model != model.alias
    if model_changed:
        changes["embedding_model"] = {"from": knowledge_base.embedding_model, "to": model.alias}
        knowledge_base.embedding_model = model.alias
        knowledge_base.embedding_dimension = model.dimensions
    if not changes:
        return knowledge_base
    knowledge_base.save(update_fields=["use_in_chat_by_default", "embedding_model", "embedding_dimension"])
    if model_changed:
        versions = (
            DocumentVersion.objects.select_related("document")
            .filter(document__knowledge_base=knowledge_base)
            .exclude(state=DocumentVersion.State.FAILED)
        )
        to_reembed = [
            version.id
            for version in versions
            if version.document.active_version_id == version.id
            or version.document.latest_version_id == version.id
        ]
        DocumentVersion.objects.filter(id__in=to_reembed).update(
            state=DocumentVersion.State.QUEUED, chunks_embedded=0, embedded_with=""
        )
        for version_id in to_reembed:
            _queue_ingestion(version_id)
    do_record_audit_event(
        kind="knowledge.base_settings_changed",
        actor=acting_user,
        details={"knowledge_base": str(knowledge_base.id), "changes": changes},
    )
    return knowledge_base


@transaction.atomic
def do_delete_knowledge_base(knowledge_base: KnowledgeBase, *, acting_user: Any) -> None:
    do_record_audit_event(
        kind="knowledge.base_deleted",
        actor=acting_user,
        details={"knowledge_base": str(knowledge_base.id), "name": knowledge_base.name},
    )
    knowledge_base.delete()


# --- documents ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadOutcome:
    file_name: str
    version: DocumentVersion


def _queue_ingestion(version_id: uuid.UUID) -> None:
    send_tenant_task_on_commit("knowledge.ingest_document_version", str(version_id))


def _read_limited(upload: UploadedFileLike, limit: int) -> bytes:
    return upload.read(limit + 1)


def _clean_file_name(name: str | None) -> str:
    # Browsers send a base name; keep only that, and nothing that would not print.
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:255] or "unnamed"


@transaction.atomic
def do_upload_documents(
    knowledge_base: KnowledgeBase,
    uploads: Iterable[UploadedFileLike],
    *,
    acting_user: Any,
    replace_document: Document | None = None,
) -> list[UploadOutcome]:
    """Each file becomes a new version of the document with its name (or of `replace_document`), queued for
    ingestion. A file that fails the up-front checks is recorded as a failed version with the reason, so the
    admin sees it next to the others; the other files go ahead."""
    uploads = list(uploads)
    if not uploads:
        raise KnowledgeInputError("Choose at least one file.")
    if len(uploads) > settings.KNOWLEDGE_MAX_FILES_PER_UPLOAD:
        raise KnowledgeInputError(f"Upload at most {settings.KNOWLEDGE_MAX_FILES_PER_UPLOAD} files at once.")
    if replace_document is not None and len(uploads) != 1:
        raise KnowledgeInputError("Upload exactly one file as the new version.")
    limits = ParseLimits.from_settings()
    outcomes: list[UploadOutcome] = []
    for upload in uploads:
        file_name = _clean_file_name(upload.name)
        document = replace_document or (
            Document.objects.select_for_update().filter(knowledge_base=knowledge_base, name=file_name).first()
        )
        if document is None:
            document = Document.objects.create(knowledge_base=knowledge_base, name=file_name)
        else:
            document = Document.objects.select_for_update().get(id=document.id)
        number = (document.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        declared = upload.size or 0
        raw = b""
        error = ""
        try:
            check_upload(file_name, declared, limits)
            raw = _read_limited(upload, limits.max_upload_bytes)
            check_upload(file_name, len(raw), limits)
        except DocumentRejected as rejection:
            error = str(rejection)
            raw = b""
        digest = hashlib.sha256(raw).hexdigest()
        version = DocumentVersion.objects.create(
            document=document,
            number=number,
            file_name=file_name,
            content_type=(getattr(upload, "content_type", "") or "")[:120],
            size_bytes=len(raw) if raw else declared,
            sha256=digest,
            upload_token=encrypt_for_tenant(base64.b64encode(raw).decode("ascii"), bulk=True) if raw else "",
            state=DocumentVersion.State.FAILED if error else DocumentVersion.State.QUEUED,
            error=error,
        )
        document.latest_version = version
        document.save(update_fields=["latest_version", "updated_at"])
        if not error:
            _queue_ingestion(version.id)
        outcomes.append(UploadOutcome(file_name=file_name, version=version))
    do_record_audit_event(
        kind="knowledge.documents_uploaded",
        actor=acting_user,
        details={
            "knowledge_base": str(knowledge_base.id),
            "documents": [
                {"name": o.file_name, "version": o.version.number, "rejected": bool(o.version.error)}
                for o in outcomes
            ],
        },
    )
    return outcomes


@transaction.atomic
def do_delete_document(document: Document, *, acting_user: Any) -> None:
    """The document, all its versions and all its chunks go (the chunks by cascade, in this transaction)."""
    do_record_audit_event(
        kind="knowledge.document_deleted",
        actor=acting_user,
        details={
            "knowledge_base": str(document.knowledge_base_id),
            "document": str(document.id),
            "name": document.name,
        },
    )
    document.delete()


# --- ingestion (worker) ---------------------------------------------------------------------------------


def _ingest_lock_key(version_id: uuid.UUID) -> int:
    digest = hashlib.blake2b(f"knowledge-ingest:{current_schema()}:{version_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def do_mark_version_failed(version_id: uuid.UUID, reason: str) -> None:
    DocumentVersion.objects.filter(id=version_id).update(
        state=DocumentVersion.State.FAILED, error=reason[:500], upload_token=""
    )


def do_ingest_document_version(version_id: uuid.UUID, *, slice_seconds: float | None = None) -> bool:
    """Parse, chunk and embed one document version. Idempotent: chunks are keyed by (version, model,
    ordinal), so a redelivered or resumed task continues where the last one stopped. Returns True when more
    work remains (the caller re-queues), False when the version is settled or gone."""
    key = _ingest_lock_key(version_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (locked,) = cursor.fetchone()  # type: ignore[misc]
    if not locked:
        return False  # another worker is on this version right now; it finishes or re-queues it
    try:
        return _ingest_locked(
            version_id,
            slice_seconds if slice_seconds is not None else settings.KNOWLEDGE_INGEST_SLICE_SECONDS,
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _ingest_locked(version_id: uuid.UUID, slice_seconds: float) -> bool:
    deadline = time.monotonic() + slice_seconds
    version = (
        DocumentVersion.objects.select_related("document", "document__knowledge_base")
        .filter(id=version_id)
        .first()
    )
    if version is None or version.state == DocumentVersion.State.FAILED:
        return False
    document = version.document
    knowledge_base = document.knowledge_base
    model = knowledge_base.embedding_model
    if version.state == DocumentVersion.State.READY and version.embedded_with == model:
        return False
    if version.id not in (document.latest_version_id, document.active_version_id):
        do_mark_version_failed(version.id, "Replaced by a newer version before it was ready.")
        return False

    if not version.text_token:
        DocumentVersion.objects.filter(id=version.id).update(state=DocumentVersion.State.PARSING)
        try:
            raw = base64.b64decode(decrypt_for_tenant(version.upload_token))
            text = parse_document(version.file_name, raw)
        except DocumentRejected as rejection:
            do_mark_version_failed(version.id, str(rejection))
            return False
        version.text_token = encrypt_for_tenant(text, bulk=True)
        version.upload_token = ""
        DocumentVersion.objects.filter(id=version.id).update(text_token=version.text_token, upload_token="")
    pieces = chunk_text(
        decrypt_for_tenant(version.text_token),
        max_chars=settings.KNOWLEDGE_CHUNK_CHARS,
        overlap_chars=settings.KNOWLEDGE_CHUNK_OVERLAP_CHARS,
    )
    done = set(Chunk.objects.filter(version=version, embedding_model=model).values_list("ordinal", flat=True))
    DocumentVersion.objects.filter(id=version.id).update(
        state=DocumentVersion.State.EMBEDDING,
        embedded_with=model,
        chunks_total=len(pieces),
        chunks_embedded=len(done),
        error="",
    )
    backend = backend_for_model(model)
    missing = [ordinal for ordinal in range(len(pieces)) if ordinal not in done]
    for start in range(0, len(missing), EMBED_BATCH):
        if start and time.monotonic() > deadline:
            return True  # at least one batch per run, so every run makes progress
        batch = missing[start : start + EMBED_BATCH]
        try:
            vectors = backend.embed_documents([pieces[ordinal] for ordinal in batch])
        except EmbeddingUnavailable as unavailable:
            do_mark_version_failed(version.id, unavailable.user_message)
            return False
        try:
            Chunk.objects.bulk_create(
                [
                    Chunk(
                        knowledge_base_id=knowledge_base.id,
                        document_id=document.id,
                        version_id=version.id,
                        ordinal=ordinal,
                        text_token=encrypt_for_tenant(pieces[ordinal], bulk=True),
                        embedding_model=model,
                        dimension=backend.dimensions,
                        embedding=vector,
                    )
                    for ordinal, vector in zip(batch, vectors, strict=True)
                ],
                ignore_conflicts=True,
            )
        except IntegrityError:
            if not DocumentVersion.objects.filter(id=version.id).exists():
                return False  # deleted while we were embedding
            raise
        done.update(batch)
        DocumentVersion.objects.filter(id=version.id).update(chunks_embedded=len(done))
    return _activate(version.id, model)


@transaction.atomic
def _activate(version_id: uuid.UUID, model: str) -> bool:
    version = DocumentVersion.objects.select_for_update().filter(id=version_id).first()
    if version is None:
        return False
    document = Document.objects.select_for_update().get(id=version.document_id)
    knowledge_base = KnowledgeBase.objects.get(id=document.knowledge_base_id)
    if knowledge_base.embedding_model != model:
        return True  # the model changed while we embedded: go round again with the new one
    Chunk.objects.filter(version=version, embedding_model=model).update(searchable=True)
    Chunk.objects.filter(version=version).exclude(embedding_model=model).delete()
    Chunk.objects.filter(document=document).exclude(version=version).delete()
    # Older versions keep their row (history) but not their text.
    DocumentVersion.objects.filter(document=document, number__lt=version.number).update(
        text_token="", upload_token=""
    )
    version.state = DocumentVersion.State.READY
    version.chunks_embedded = version.chunks_total
    version.save(update_fields=["state", "chunks_embedded", "updated_at"])
    document.active_version = version
    document.save(update_fields=["active_version", "updated_at"])
    return False
