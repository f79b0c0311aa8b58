"""Console pages: tenant admins only, everything scoped to the tenant of the domain."""

import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from knowledge.actions import do_create_knowledge_base, do_ingest_document_version
from knowledge.models import Chunk, DocumentVersion, KnowledgeBase
from tenants.models import Tenant
from tests.conftest import client_for, make_member

pytestmark = pytest.mark.django_db


def test_end_user_cannot_open_the_knowledge_console(acme: Tenant) -> None:
    user = make_member(acme)
    assert client_for(acme, user).get("/console/knowledge/").status_code == 403


def test_admin_creates_a_knowledge_base_and_sees_it_listed(acme: Tenant) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    client = client_for(acme, admin)
    assert client.get("/console/knowledge/").status_code == 200
    response = client.post(
        "/console/knowledge/new/", {"name": "  HR   handbook ", "use_in_chat_by_default": "on"}
    )
    assert response.status_code == 302
    with tenant_context(acme):
        kb = KnowledgeBase.objects.get(name="HR handbook")
    assert kb.use_in_chat_by_default
    page = client.get("/console/knowledge/").content.decode()
    assert "HR handbook" in page and "Used in chat" in page
    duplicate = client.post("/console/knowledge/new/", {"name": "hr HANDBOOK"})
    assert duplicate.status_code == 400
    assert "A knowledge base named “hr HANDBOOK” already exists." in duplicate.content.decode()


def test_other_tenants_knowledge_base_is_not_found(acme: Tenant, globex: Tenant) -> None:
    globex_admin = make_member(globex, roles=["tenant_admin"])
    with tenant_context(globex):
        globex_kb = do_create_knowledge_base(f"Globex secrets {uuid.uuid4()}", acting_user=globex_admin)
    acme_admin = make_member(acme, roles=["tenant_admin"])
    client = client_for(acme, acme_admin)
    for path in ("", "documents/", "query/", "documents/upload/"):
        method = client.get if path in ("", "documents/") else client.post
        response = method(f"/console/knowledge/{globex_kb.id}/{path}")
        assert response.status_code == 404, path
        assert "Globex secrets" not in response.content.decode()


def test_upload_lists_each_file_with_its_state_and_reason(acme: Tenant) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    with tenant_context(acme):
        kb = do_create_knowledge_base(f"Uploads {uuid.uuid4()}", acting_user=admin)
    client = client_for(acme, admin)
    response = client.post(
        f"/console/knowledge/{kb.id}/documents/upload/",
        {"files": [SimpleUploadedFile("a.txt", b"Alpha facts."), SimpleUploadedFile("b.pdf", b"not a pdf")]},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-document="a.txt" data-state="queued"' in body
    assert 'hx-trigger="every 1s"' in body  # keeps polling while work is pending
    with tenant_context(acme):
        for version in DocumentVersion.objects.filter(document__knowledge_base=kb):
            while do_ingest_document_version(version.id):
                pass
    body = client.get(f"/console/knowledge/{kb.id}/documents/").content.decode()
    assert 'data-document="a.txt" data-state="ready"' in body
    assert 'data-document="b.pdf" data-state="failed"' in body
    assert "The file is not a PDF" in body
    assert "every 1s" not in body
    empty = client.post(f"/console/knowledge/{kb.id}/documents/upload/", {})
    assert empty.status_code == 400 and empty.content.decode() == "Choose at least one file."


def test_test_query_shows_passages_with_scores(acme: Tenant) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    with tenant_context(acme):
        kb = do_create_knowledge_base(f"Query {uuid.uuid4()}", acting_user=admin)
    client = client_for(acme, admin)
    client.post(
        f"/console/knowledge/{kb.id}/documents/upload/",
        {"files": [SimpleUploadedFile("parking.txt", b"Visitors park in garage B, level 2.")]},
    )
    with tenant_context(acme):
        [version] = DocumentVersion.objects.filter(document__knowledge_base=kb)
        while do_ingest_document_version(version.id):
            pass
    body = client.post(
        f"/console/knowledge/{kb.id}/query/", {"question": "Where do visitors park?"}
    ).content.decode()
    assert "garage B" in body and "parking.txt" in body and 'data-results="1"' in body
    assert client.post(f"/console/knowledge/{kb.id}/query/", {"question": " "}).status_code == 400


def test_members_open_cited_passages_only_of_chat_knowledge_bases(acme: Tenant) -> None:
    admin = make_member(acme, roles=["tenant_admin"])
    user = make_member(acme)
    with tenant_context(acme):
        shared = do_create_knowledge_base(
            f"Shared {uuid.uuid4()}", acting_user=admin, use_in_chat_by_default=True
        )
        private = do_create_knowledge_base(f"Private {uuid.uuid4()}", acting_user=admin)
    admin_client = client_for(acme, admin)
    for kb, text in (
        (shared, b"Shared fact: the gym opens at 6."),
        (private, b"Private fact: layoffs in May."),
    ):
        admin_client.post(
            f"/console/knowledge/{kb.id}/documents/upload/", {"files": [SimpleUploadedFile("f.txt", text)]}
        )
    with tenant_context(acme):
        for version in DocumentVersion.objects.filter(document__knowledge_base__in=[shared, private]):
            while do_ingest_document_version(version.id):
                pass
        shared_chunk = Chunk.objects.get(knowledge_base=shared)
        private_chunk = Chunk.objects.get(knowledge_base=private)
    client = client_for(acme, user)
    assert "the gym opens at 6" in client.get(f"/knowledge/passages/{shared_chunk.id}/").content.decode()
    hidden = client.get(f"/knowledge/passages/{private_chunk.id}/")
    assert hidden.status_code == client.get(f"/knowledge/passages/{uuid.uuid4()}/").status_code == 404
    assert admin_client.get(f"/knowledge/passages/{private_chunk.id}/").status_code == 200


def test_oversized_upload_request_is_refused_before_reading_files(acme: Tenant, settings: Any) -> None:
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    settings.KNOWLEDGE_MAX_FILES_PER_UPLOAD = 1
    admin = make_member(acme, roles=["tenant_admin"])
    with tenant_context(acme):
        kb = do_create_knowledge_base(f"Big {uuid.uuid4()}", acting_user=admin)
    response = client_for(acme, admin).post(
        f"/console/knowledge/{kb.id}/documents/upload/",
        {"files": [SimpleUploadedFile("big.txt", b"x" * (2 << 20))]},
    )
    assert response.status_code == 413
    assert response.content.decode() == "The upload is too large: at most 1 file of 1000 bytes each."
    with tenant_context(acme):
        assert not DocumentVersion.objects.filter(document__knowledge_base=kb).exists()


def test_console_routes_are_for_tenant_admins_and_passages_for_members() -> None:
    from django.urls import get_resolver

    from tests.test_access_rules import walk

    rules = {
        name: pattern.callback.tenant_access  # type: ignore[attr-defined]
        for name, pattern in walk(get_resolver("convosuite.urls").url_patterns)
        if name.startswith("knowledge:")
    }
    assert rules.pop("knowledge:passage") == {"end_user", "tenant_admin"}
    assert len(rules) == 10
    assert all(rule == {"tenant_admin"} for rule in rules.values())
