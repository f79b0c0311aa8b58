"""Export and import of a tenant's prompts as a zip (format documented in docs/prompts.md).

Imports are untrusted input: a zip may lie about sizes, carry path-traversal names, expand to gigabytes or
be shaped wrongly. Everything is checked (names, counts and sizes before reading; bounded reads; schema)
and the bundle fully parsed before the database is touched; the import itself is one transaction.
"""

import hashlib
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from accounts.models import User
from audit.actions import do_record_audit_event
from gateway import screening
from prompts.actions import (
    PromptError,
    VersionDraft,
    check_draft,
    check_label_name,
    do_move_label,
    do_publish_prompt_version,
    draft_from_version,
)
from prompts.models import PromptLabel, PromptTemplate, PromptVersion

FORMAT = "convosuite.prompts"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BODY_NAME_RE = re.compile(
    r"^templates/(?P<template>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/v(?P<number>[1-9][0-9]{0,5})\.txt$"
)
# A fixed timestamp inside the zip, so exporting the same prompts twice gives the same bytes.
ZIP_TIMESTAMP = (2000, 1, 1, 0, 0, 0)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_ENTRIES = 5000
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
MAX_BODY_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
MAX_TEMPLATES = 500


class ImportRejected(ValueError):
    """The zip cannot be imported; the message says why. Nothing was changed."""


# --- export ---------------------------------------------------------------------------------------------


def _body_path(template: PromptTemplate, number: int) -> str:
    return f"templates/{template.id}/v{number}.txt"


def build_export(tenant_slug: str) -> tuple[bytes, dict[str, int]]:
    templates = list(PromptTemplate.objects.order_by("name").prefetch_related("versions", "labels__version"))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "source_tenant": tenant_slug,
        "templates": [],
    }
    bodies: list[tuple[str, bytes]] = []
    version_count = 0
    for template in templates:
        versions = sorted(template.versions.all(), key=lambda version: version.number)
        entry: dict[str, Any] = {
            "id": str(template.id),
            "name": template.name,
            "description": template.description,
            "created_at": template.created_at.isoformat(),
            "labels": {label.name: label.version.number for label in template.labels.all()},
            "versions": [],
        }
        for version in versions:
            body = version.body.encode("utf-8")
            path = _body_path(template, version.number)
            bodies.append((path, body))
            entry["versions"].append(
                {
                    "number": version.number,
                    "body_file": path,
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "variables": version.variables,
                    "model": version.model,
                    "temperature": str(version.temperature),
                    "max_tokens": version.max_tokens,
                    "knowledge_base_ids": version.knowledge_base_ids,
                    "author": version.author_label,
                    "message": version.message,
                    "created_at": version.created_at.isoformat(),
                }
            )
            version_count += 1
        manifest["templates"].append(entry)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo(MANIFEST, ZIP_TIMESTAMP),
            json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"),
            compress_type=zipfile.ZIP_DEFLATED,
        )
        for path, body in bodies:
            archive.writestr(zipfile.ZipInfo(path, ZIP_TIMESTAMP), body, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue(), {"templates": len(templates), "versions": version_count}


def do_export_prompts(*, acting_user: User | None, tenant_slug: str) -> bytes:
    """The bundle, unless it carries another tenant's canary marker: then CrossTenantBlocked is raised and the
    platform has an incident (gateway.screening), reported after the transaction so it is not rolled back."""
    with transaction.atomic():
        data, counts = build_export(tenant_slug)
        screened = screening.screen(tenant_slug, _bundle_texts(data))
        if not screened.foreign:
            do_record_audit_event(
                kind="prompts.exported",
                actor=acting_user,
                details={**counts, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)},
            )
    if screened.foreign:
        raise screening.block(
            screening.HitReport(
                tenant_schema=tenant_slug,
                where=screening.EXPORT,
                findings=screened.foreign,
                user_id=acting_user.pk if acting_user else None,
                source="prompt bundle export",
            )
        )
    return data


def _bundle_texts(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist()]


# --- reading an untrusted bundle ------------------------------------------------------------------------


@dataclass
class BundleVersion:
    number: int
    draft: VersionDraft  # body filled in once the body file is read and verified
    author: str
    created_at: datetime | None
    body_file: str
    body_sha256: str


@dataclass
class BundleTemplate:
    name: str
    description: str
    versions: list[BundleVersion]
    labels: dict[str, int] = field(default_factory=dict)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # The header's size may lie: never read past what it promised (nor the limit); zipfile's CRC check then
    # catches data that was cut short by that.
    try:
        with archive.open(info) as stream:
            data = stream.read(min(info.file_size, limit) + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError):
        raise ImportRejected(f"{info.filename}: damaged, or larger than its header says.") from None
    if len(data) > info.file_size or len(data) > limit:
        raise ImportRejected(f"{info.filename}: damaged, or larger than its header says.")
    return data


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ImportRejected(message)


def read_bundle(data: bytes) -> list[BundleTemplate]:
    _require(
        len(data) <= MAX_UPLOAD_BYTES, f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
    )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError):
        raise ImportRejected("This is not a zip file.") from None
    with archive:
        infos = archive.infolist()
        _require(
            len(infos) <= MAX_ENTRIES,
            f"The zip holds {len(infos)} files; at most {MAX_ENTRIES} are accepted.",
        )
        names: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            _require(name not in names, f"{name!r} appears twice in the zip.")
            _require(
                name == MANIFEST or BODY_NAME_RE.match(name) is not None,
                f"Unexpected file {name[:120]!r} in the zip (only manifest.json and templates/<id>/v<n>.txt).",
            )
            _require(not info.flag_bits & 0x1, f"{name}: encrypted zip entries are not accepted.")
            limit = MAX_MANIFEST_BYTES if name == MANIFEST else MAX_BODY_BYTES
            _require(
                info.file_size <= limit, f"{name}: {info.file_size} bytes is more than the {limit} allowed."
            )
            _require(
                info.file_size <= max(info.compress_size, 1) * MAX_COMPRESSION_RATIO,
                f"{name}: compressed suspiciously well (zip bomb?).",
            )
            total += info.file_size
            names[name] = info
        _require(total <= MAX_TOTAL_BYTES, "The zip expands to more than the allowed total size.")
        _require(MANIFEST in names, "The zip has no manifest.json: is it a ConvoSuite prompts export?")
        try:
            manifest = json.loads(_read_entry(archive, names[MANIFEST], MAX_MANIFEST_BYTES).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as problem:
            raise ImportRejected(f"manifest.json is not valid JSON ({problem}).") from None
        templates = _parse_manifest(manifest)
        used: set[str] = set()
        for template in templates:
            for version in template.versions:
                path, expected_sha = version.body_file, version.body_sha256
                _require(path in names, f"{template.name} v{version.number}: {path} is missing from the zip.")
                raw = _read_entry(archive, names[path], MAX_BODY_BYTES)
                _require(
                    hashlib.sha256(raw).hexdigest() == expected_sha,
                    f"{path}: content does not match body_sha256 in the manifest.",
                )
                try:
                    version.draft.body = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ImportRejected(f"{path} is not UTF-8 text.") from None
                used.add(path)
        extra = sorted(set(names) - used - {MANIFEST})
        if extra:
            raise ImportRejected(f"{extra[0]} is not referenced by the manifest.")
    for template in templates:
        for version in template.versions:
            try:
                check_draft(version.draft)
            except PromptError as problem:
                raise ImportRejected(f"{template.name} v{version.number}: {problem}") from None
    return templates


# The manifest's shape (docs/prompts.md). Strict: text must be text and numbers numbers (no "3" for 3, no
# true for 1); keys this version does not know (exported_at, source_tenant, created_at of a template) are
# ignored.
_STRICT = ConfigDict(strict=True, extra="ignore")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class ManifestVersion(BaseModel):
    model_config = _STRICT

    number: Annotated[int, Field(ge=1)]
    body_file: Annotated[str, Field(max_length=200)]
    body_sha256: Annotated[str, Field(max_length=64)]
    variables: dict[str, str] = {}
    knowledge_base_ids: list[Any] = []
    model: Annotated[NonBlank, Field(max_length=64)]
    temperature: Annotated[str, Field(max_length=10)]
    max_tokens: int
    author: Annotated[str, Field(max_length=255)] = ""
    message: Annotated[str, Field(max_length=500)] = ""
    created_at: Annotated[str, Field(max_length=40)] = ""

    @field_validator("temperature")
    @classmethod
    def _decimal_text(cls, value: str) -> str:
        try:
            Decimal(value)
        except InvalidOperation:
            raise ValueError("must be a decimal number as text") from None
        return value

    @field_validator("created_at")
    @classmethod
    def _iso_or_empty(cls, value: str) -> str:
        if value and parse_datetime(value) is None:
            raise ValueError("is not an ISO date-time")
        return value


class ManifestTemplate(BaseModel):
    model_config = _STRICT

    id: Annotated[str, Field(max_length=36)]
    name: Annotated[NonBlank, Field(max_length=100)]
    description: Annotated[str, Field(max_length=300)] = ""
    versions: Annotated[list[ManifestVersion], Field(min_length=1)]
    labels: dict[str, Any] = {}


class Manifest(BaseModel):
    model_config = _STRICT

    format: str
    format_version: Any
    templates: Annotated[list[ManifestTemplate], Field(max_length=MAX_TEMPLATES)]


def _problem_text(error: ErrorDetails) -> str:
    """One of pydantic's errors as the sentence an admin reads: where in the manifest, then what."""
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    if error["type"] == "too_long" and where == "templates":
        return f"At most {MAX_TEMPLATES} templates per import."
    if error["type"] in ("list_type", "dict_type", "model_type"):
        kind = {"list_type": "a list", "dict_type": "an object", "model_type": "an object"}[error["type"]]
        return f"manifest.json: {where or 'the manifest'} must be {kind}."
    message = error["msg"].removeprefix("Value error, ")
    return f"manifest.json: {where}: {message[0].lower()}{message[1:]}."


def _parse_manifest(raw: Any) -> list[BundleTemplate]:
    """The manifest's shape is checked by the pydantic models above; what no model can say (the format and
    its version, names and numbers unique, body files where they belong, labels on versions in the zip) is
    checked here, each with its own message."""
    if not isinstance(raw, dict):
        raise ImportRejected("manifest.json must hold a JSON object.")
    _require(raw.get("format") == FORMAT, f"manifest.json: format must be {FORMAT!r}.")
    _require(
        raw.get("format_version") == FORMAT_VERSION,
        f"manifest.json: format_version {raw.get('format_version')!r} is not supported (expected {FORMAT_VERSION}).",
    )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as invalid:
        raise ImportRejected(_problem_text(invalid.errors()[0])) from None
    result: list[BundleTemplate] = []
    seen_names: set[str] = set()
    for entry in manifest.templates:
        name = " ".join(entry.name.split())
        _require(name.lower() not in seen_names, f"Template {name!r} appears twice.")
        seen_names.add(name.lower())
        versions: list[BundleVersion] = []
        for v_index, v in enumerate(entry.versions):
            v_where = f"{name} versions[{v_index}]"
            _require(
                all(other.number != v.number for other in versions),
                f"{name}: version {v.number} appears twice.",
            )
            _require(
                v.body_file == f"templates/{entry.id}/v{v.number}.txt",
                f"{v_where}.body_file does not match its template id and number.",
            )
            draft = VersionDraft(
                body="",
                model=v.model,
                temperature=Decimal(v.temperature),
                max_tokens=v.max_tokens,
                variables=dict(v.variables),
                knowledge_base_ids=list(v.knowledge_base_ids),
                message=v.message,
            )
            versions.append(
                BundleVersion(
                    number=v.number,
                    draft=draft,
                    author=v.author,
                    created_at=parse_datetime(v.created_at) if v.created_at else None,
                    body_file=v.body_file,
                    body_sha256=v.body_sha256,
                )
            )
        numbers = {version.number for version in versions}
        clean_labels: dict[str, int] = {}
        for label, number in entry.labels.items():
            try:
                label_name = check_label_name(label)
            except PromptError as problem:
                raise ImportRejected(f"{name}: {problem}") from None
            _require(
                number in numbers,
                f"{name}: label {label!r} points at version {number!r}, which is not in the zip.",
            )
            clean_labels[label_name] = int(number)
        versions.sort(key=lambda version: version.number)
        result.append(
            BundleTemplate(name=name, description=entry.description, versions=versions, labels=clean_labels)
        )
    return result


# --- import ---------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    templates_created: int = 0
    templates_updated: int = 0
    versions_added: int = 0
    versions_unchanged: int = 0
    labels_moved: int = 0


@transaction.atomic
def do_import_prompts(data: bytes, *, acting_user: User | None, filename: str = "") -> ImportReport:
    """Import a bundle. New template names are created with their version numbers, authors and times;
    for a name that exists, versions whose content is not there yet are appended as new versions, and the
    bundle's labels are moved onto the matching versions (each move an audit event)."""
    bundle = read_bundle(data)
    report = ImportReport()
    for item in bundle:
        template = PromptTemplate.objects.filter(name__iexact=item.name).first()
        local_versions: dict[int, PromptVersion] = {}
        if template is None:
            template = PromptTemplate.objects.create(name=item.name, description=item.description)
            report.templates_created += 1
            do_record_audit_event(
                kind="prompts.template_created",
                actor=acting_user,
                details={"template_id": str(template.id), "template_name": template.name, "via": "import"},
            )
            for version in item.versions:
                original = version.author
                local_versions[version.number] = do_publish_prompt_version(
                    template,
                    version.draft,
                    acting_user=acting_user,
                    author_label=f"{original} (imported)" if original else "imported",
                    created_at=version.created_at,
                    number=version.number,
                )
                report.versions_added += 1
        else:
            report.templates_updated += 1
            existing = {
                draft_from_version(version).fingerprint(): version
                for version in PromptVersion.objects.filter(template=template)
            }
            for version in item.versions:
                match = existing.get(version.draft.fingerprint())
                if match is None:
                    match = do_publish_prompt_version(
                        template,
                        version.draft,
                        acting_user=acting_user,
                        author_label=f"imported v{version.number}",
                    )
                    existing[version.draft.fingerprint()] = match
                    report.versions_added += 1
                else:
                    report.versions_unchanged += 1
                local_versions[version.number] = match
        for label_name, number in item.labels.items():
            if do_move_label(
                template, label_name, local_versions[number], acting_user=acting_user, reason="import"
            ):
                report.labels_moved += 1
    do_record_audit_event(
        kind="prompts.imported",
        actor=acting_user,
        details={
            "filename": filename[:200],
            "sha256": hashlib.sha256(data).hexdigest(),
            "templates_created": report.templates_created,
            "templates_updated": report.templates_updated,
            "versions_added": report.versions_added,
            "labels_moved": report.labels_moved,
        },
    )
    return report


def current_labels(template: PromptTemplate) -> dict[str, int]:
    return {
        label.name: label.version.number
        for label in PromptLabel.objects.filter(template=template).select_related("version")
    }
