"""Export and import of prompts as a zip: round trip, promotion into an existing tenant, hostile zips."""

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django_tenants.utils import tenant_context

from audit.models import AuditEvent
from prompts.actions import VersionDraft, do_create_prompt_template, do_move_label, do_publish_prompt_version
from prompts.models import PromptLabel, PromptTemplate, PromptVersion
from prompts.transfer import (
    MAX_BODY_BYTES,
    ImportRejected,
    build_export,
    do_export_prompts,
    do_import_prompts,
)
from tenants.models import Tenant
from tests.conftest import client_for, make_member

pytestmark = pytest.mark.django_db

# Bodies that a careless exporter would mangle: trailing spaces, CRLF, tabs, no final newline, non-ASCII.
BODIES = [
    "You are the Acme helper.\n\tBe brief.  \nPrices in $$ only.\n",
    "Line with CRLF\r\nand ünïcödé — “quotes” 🙂\nno newline at end",
    "Hello $user_name from ${company}.",
]


@pytest.fixture(autouse=True)
def _no_prompts_yet(acme: Tenant, globex: Tenant) -> None:
    """Browser tests commit templates into the shared tenants; start each test from none (inside this
    test's transaction, so they come back afterwards)."""
    for tenant in (acme, globex):
        with tenant_context(tenant):
            PromptLabel.objects.all().delete()
            PromptTemplate.objects.all().delete()


def draft(body: str, **fields: Any) -> VersionDraft:
    return VersionDraft(body=body, model="sim-model", temperature=Decimal("0.25"), max_tokens=64, **fields)


def seed(tenant: Tenant) -> PromptTemplate:
    admin = make_member(tenant, roles=["tenant_admin"])
    with tenant_context(tenant):
        template = do_create_prompt_template(
            name="Helper", description="Exported", draft=draft(BODIES[0]), acting_user=admin
        )
        do_publish_prompt_version(
            template, draft(BODIES[1], message="second"), acting_user=admin, labels=["staging"]
        )
        do_publish_prompt_version(
            template,
            draft(BODIES[2], variables={"company": "Acme"}, knowledge_base_ids=[4, "kb-x"], message="third"),
            acting_user=admin,
            labels=["production", "canary"],
        )
        do_create_prompt_template(
            name="Second agent", description="", draft=draft("Other prompt."), acting_user=admin
        )
        return template


def snapshot() -> dict[str, Any]:
    return {
        "templates": sorted(PromptTemplate.objects.values_list("name", flat=True)),
        "versions": PromptVersion.objects.count(),
        "labels": sorted(PromptLabel.objects.values_list("template__name", "name", "version__number")),
        "audit": AuditEvent.objects.count(),
    }


def test_export_then_import_into_another_tenant_keeps_bodies_byte_identical(
    acme: Tenant, globex: Tenant
) -> None:
    seed(acme)
    with tenant_context(acme):
        data = do_export_prompts(acting_user=None, tenant_slug="acme")
        assert AuditEvent.objects.filter(kind="prompts.exported").count() == 1
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        helper = next(t for t in manifest["templates"] if t["name"] == "Helper")
        assert helper["labels"] == {"canary": 3, "production": 3, "staging": 2}
        for version, body in zip(helper["versions"], BODIES, strict=True):
            assert archive.read(version["body_file"]) == body.encode("utf-8")
    globex_admin = make_member(globex, roles=["tenant_admin"])
    with tenant_context(globex):
        report = do_import_prompts(data, acting_user=globex_admin, filename="acme.zip")
        assert (report.templates_created, report.versions_added) == (2, 4)
        template = PromptTemplate.objects.get(name="Helper")
        assert [v.body for v in template.versions.order_by("number")] == BODIES
        v3 = template.versions.get(number=3)
        assert v3.variables == {"company": "Acme"} and v3.knowledge_base_ids == [4, "kb-x"]
        assert v3.message == "third" and v3.temperature == Decimal("0.25")
        assert dict(PromptLabel.objects.filter(template=template).values_list("name", "version__number")) == {
            "canary": 3,
            "production": 3,
            "staging": 2,
        }
        assert AuditEvent.objects.filter(kind="prompts.imported").count() == 1
        reexport, _ = build_export("globex")
    with zipfile.ZipFile(io.BytesIO(data)) as first, zipfile.ZipFile(io.BytesIO(reexport)) as second:
        first_bodies = sorted(first.read(name) for name in first.namelist() if name.endswith(".txt"))
        second_bodies = sorted(second.read(name) for name in second.namelist() if name.endswith(".txt"))
        assert first_bodies == second_bodies


def test_importing_again_into_an_existing_template_appends_only_new_versions_and_moves_labels(
    acme: Tenant, globex: Tenant
) -> None:
    template = seed(acme)
    globex_admin = make_member(globex, roles=["tenant_admin"])
    with tenant_context(acme):
        first = build_export("acme")[0]
    with tenant_context(globex):
        do_import_prompts(first, acting_user=globex_admin)
    with tenant_context(acme):
        do_publish_prompt_version(
            template, draft("A fourth version."), acting_user=None, labels=["production"]
        )
        do_move_label(template, "staging", template.versions.get(number=3), acting_user=None)
        second = build_export("acme")[0]
    with tenant_context(globex):
        report = do_import_prompts(second, acting_user=globex_admin)
        assert (report.templates_created, report.templates_updated) == (0, 2)
        assert (report.versions_added, report.versions_unchanged, report.labels_moved) == (1, 4, 2)
        imported = PromptTemplate.objects.get(name="Helper")
        assert imported.versions.count() == 4
        labels = dict(PromptLabel.objects.filter(template=imported).values_list("name", "version__number"))
        assert labels == {"production": 4, "staging": 3, "canary": 3}
        moves = AuditEvent.objects.filter(kind="prompts.label_moved", details__reason="import").count()
        assert moves >= 2


# --- hostile and malformed zips --------------------------------------------------------------------------


def make_zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


TEMPLATE_ID = "0b7c1f0e-6a3a-4c53-9d1e-2f3c4b5a6d7e"


def valid_entries(body: bytes = b"Imported prompt.") -> dict[str, bytes]:
    manifest = {
        "format": "convosuite.prompts",
        "format_version": 1,
        "templates": [
            {
                "id": TEMPLATE_ID,
                "name": "Imported",
                "description": "",
                "labels": {"production": 1},
                "versions": [
                    {
                        "number": 1,
                        "body_file": f"templates/{TEMPLATE_ID}/v1.txt",
                        "body_sha256": hashlib.sha256(body).hexdigest(),
                        "variables": {},
                        "model": "sim-model",
                        "temperature": "0.50",
                        "max_tokens": 64,
                        "knowledge_base_ids": [],
                        "author": "someone",
                        "message": "",
                        "created_at": "2026-01-02T03:04:05+00:00",
                    }
                ],
            }
        ],
    }
    return {"manifest.json": json.dumps(manifest).encode(), f"templates/{TEMPLATE_ID}/v1.txt": body}


def with_manifest(change: Any) -> bytes:
    entries = valid_entries()
    manifest = json.loads(entries["manifest.json"])
    change(manifest)
    entries["manifest.json"] = json.dumps(manifest).encode()
    return make_zip(entries)


def zip_with_lying_header() -> bytes:
    """An entry whose header claims 10 bytes but whose data inflates to 1 MB."""
    data = bytearray(make_zip({**valid_entries(), "manifest.json": b"{" + b" " * (1024 * 1024) + b"}"}))
    # Patch the uncompressed size in both the local header and the central directory to 10 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        position = data.find(signature)
        data[position + offset : position + offset + 4] = (10).to_bytes(4, "little")
    return bytes(data)


def with_body(body: bytes) -> bytes:
    return make_zip(valid_entries(body=body))


def hostile_cases() -> dict[str, tuple[Callable[[], bytes], str]]:
    """Each case builds its zip only when run (some are large)."""
    return {
        "not a zip": (lambda: b"this is not a zip file at all", "not a zip file"),
        "path traversal": (
            lambda: make_zip({**valid_entries(), "../../etc/passwd": b"root"}),
            "Unexpected file '../../etc/passwd'",
        ),
        "absolute path": (
            lambda: make_zip({**valid_entries(), "/tmp/evil.txt": b"x"}),
            "Unexpected file '/tmp/evil.txt'",
        ),
        "zip bomb": (
            lambda: make_zip(
                {**valid_entries(), f"templates/{TEMPLATE_ID}/v2.txt": b"\0" * (50 * 1024 * 1024)}
            ),
            "bytes is more than",
        ),
        "compression ratio": (
            lambda: make_zip(
                {**valid_entries(), f"templates/{TEMPLATE_ID}/v2.txt": b"a" * (MAX_BODY_BYTES - 1)}
            ),
            "compressed suspiciously well",
        ),
        "too many files": (
            lambda: make_zip(
                {**valid_entries(), **{f"templates/{TEMPLATE_ID}/v{n}.txt": b"x" for n in range(2, 5003)}}
            ),
            "at most 5000 are accepted",
        ),
        "lying size header": (lambda: zip_with_lying_header(), "damaged, or larger than its header says"),
        "no manifest": (lambda: make_zip({f"templates/{TEMPLATE_ID}/v1.txt": b"x"}), "no manifest.json"),
        "manifest not json": (
            lambda: make_zip({**valid_entries(), "manifest.json": b"{nope"}),
            "not valid JSON",
        ),
        "wrong format": (
            lambda: with_manifest(lambda m: m.update(format="something.else")),
            "format must be",
        ),
        "wrong version": (
            lambda: with_manifest(lambda m: m.update(format_version=99)),
            "format_version 99 is not supported",
        ),
        "templates not a list": (
            lambda: with_manifest(lambda m: m.update(templates={"a": 1})),
            "templates must be a list",
        ),
        "checksum mismatch": (
            lambda: with_manifest(lambda m: m["templates"][0]["versions"][0].update(body_sha256="0" * 64)),
            "does not match body_sha256",
        ),
        "label to missing version": (
            lambda: with_manifest(lambda m: m["templates"][0].update(labels={"production": 7})),
            "points at version 7",
        ),
        "unknown model": (
            lambda: with_manifest(lambda m: m["templates"][0]["versions"][0].update(model="gpt-unknown")),
            "Model 'gpt-unknown' is not offered",
        ),
        "body file elsewhere": (
            lambda: with_manifest(
                lambda m: m["templates"][0]["versions"][0].update(body_file="manifest.json")
            ),
            "body_file does not match",
        ),
        "missing variable": (lambda: with_body(b"Hello $nobody"), "No value for $nobody"),
        "not utf-8": (lambda: with_body(b"\xff\xfe bad bytes"), "is not UTF-8 text"),
        "unreferenced file": (
            lambda: make_zip({**valid_entries(), f"templates/{TEMPLATE_ID}/v9.txt": b"x"}),
            "is not referenced by the manifest",
        ),
    }


@pytest.mark.parametrize("case", sorted(hostile_cases()))
def test_malformed_or_hostile_zip_is_refused_with_a_clear_error_and_changes_nothing(
    case: str, acme: Tenant
) -> None:
    build, expected = hostile_cases()[case]
    data = build()
    seed(acme)
    with tenant_context(acme):
        before = snapshot()
        with pytest.raises(ImportRejected) as refusal:
            do_import_prompts(data, acting_user=None)
        assert expected in str(refusal.value)
        assert snapshot() == before


def test_valid_handmade_zip_imports(acme: Tenant) -> None:
    with tenant_context(acme):
        do_import_prompts(make_zip(valid_entries()), acting_user=None)
        version = PromptVersion.objects.get(template__name="Imported")
        assert version.body == "Imported prompt." and version.author_label == "someone (imported)"
        assert version.created_at.isoformat() == "2026-01-02T03:04:05+00:00"


def test_console_export_and_import_round_trip_over_http(acme: Tenant, globex: Tenant) -> None:
    seed(acme)
    acme_admin = client_for(acme, make_member(acme, roles=["tenant_admin"]))
    response = acme_admin.post("/console/prompts/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert 'filename="prompts-acme-' in response["Content-Disposition"]
    globex_admin = client_for(globex, make_member(globex, roles=["tenant_admin"]))
    upload = io.BytesIO(response.content)
    upload.name = "acme.zip"
    imported = globex_admin.post("/console/prompts/import/", {"bundle": upload})
    assert imported.status_code == 302
    assert "Helper" in globex_admin.get("/console/prompts/").content.decode()
    bad = io.BytesIO(make_zip({**valid_entries(), "../evil": b"x"}))
    bad.name = "evil.zip"
    refused = globex_admin.post("/console/prompts/import/", {"bundle": bad})
    assert refused.status_code == 400
    assert "Nothing was imported. Unexpected file &#x27;../evil&#x27;" in refused.content.decode()
