"""Turn an uploaded file into plain text, or refuse it with a reason a tenant admin can act on.

Every file is untrusted. Limits are checked before the expensive step they protect: the upload size before
anything is read, a DOCX's declared uncompressed sizes and compression ratios before it is unzipped, a PDF's
page and object counts before text is extracted, and the extracted text's length while it is collected.
Parsing runs in the worker with the task's time limit as the last guard.
"""

import html.parser
import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

TEXT_TYPES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown"}
HTML_TYPES = {".html": "html", ".htm": "html"}
SUPPORTED_EXTENSIONS = {**TEXT_TYPES, **HTML_TYPES, ".pdf": "pdf", ".docx": "docx"}


class DocumentRejected(ValueError):
    """The file cannot be used; the message says why, for the person who uploaded it."""


@dataclass(frozen=True)
class ParseLimits:
    max_upload_bytes: int
    max_text_chars: int
    max_pdf_pages: int
    max_pdf_objects: int
    max_docx_uncompressed_bytes: int
    max_docx_ratio: int
    max_docx_entries: int

    @classmethod
    def from_settings(cls) -> "ParseLimits":
        return cls(
            max_upload_bytes=settings.KNOWLEDGE_MAX_UPLOAD_BYTES,
            max_text_chars=settings.KNOWLEDGE_MAX_TEXT_CHARS,
            max_pdf_pages=settings.KNOWLEDGE_MAX_PDF_PAGES,
            max_pdf_objects=settings.KNOWLEDGE_MAX_PDF_OBJECTS,
            max_docx_uncompressed_bytes=settings.KNOWLEDGE_MAX_DOCX_UNCOMPRESSED_BYTES,
            max_docx_ratio=settings.KNOWLEDGE_MAX_DOCX_COMPRESSION_RATIO,
            max_docx_entries=1000,
        )


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def document_kind(file_name: str) -> str:
    """The parser for a file name, or DocumentRejected for a type we do not read."""
    extension = PurePosixPath(file_name.lower()).suffix
    kind = SUPPORTED_EXTENSIONS.get(extension)
    if kind is None:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        shown = extension or "(no extension)"
        raise DocumentRejected(f"Files of type {shown} are not supported. Supported: {supported}.")
    return kind


def check_upload(file_name: str, size: int, limits: ParseLimits) -> str:
    """The checks that need no content: type, emptiness and size. Returns the document kind."""
    kind = document_kind(file_name)
    if size == 0:
        raise DocumentRejected("The file is empty.")
    if size > limits.max_upload_bytes:
        raise DocumentRejected(
            f"The file is {human_size(size)}; the limit is {human_size(limits.max_upload_bytes)}."
        )
    return kind


def parse_document(file_name: str, raw: bytes, limits: ParseLimits | None = None) -> str:
    limits = limits or ParseLimits.from_settings()
    kind = check_upload(file_name, len(raw), limits)
    try:
        if kind in ("text", "markdown"):
            text = _decode_text(raw)
        elif kind == "html":
            text = _html_to_text(_decode_text(raw))
        elif kind == "pdf":
            text = _pdf_to_text(raw, limits)
        else:
            text = _docx_to_text(raw, limits)
    except DocumentRejected:
        raise
    except Exception as failure:  # noqa: BLE001 - any parser crash on hostile input is that file's problem
        logger.warning("document parser failed: %s", type(failure).__name__)
        raise DocumentRejected(
            f"The file could not be read as {kind.upper()}: it may be damaged."
        ) from failure
    text = _normalise(text)
    if len(text) > limits.max_text_chars:
        raise DocumentRejected(
            f"The document has more than {limits.max_text_chars:,} characters of text; split it into smaller files."
        )
    if not text.strip():
        if kind == "pdf":
            raise DocumentRejected(
                "No text found in the PDF (a scanned PDF needs OCR, which is not supported)."
            )
        raise DocumentRejected("No text found in the document.")
    return text


def _normalise(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).replace("\x00", "").strip()


def _decode_text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as failure:
        raise DocumentRejected(
            f"The file is not UTF-8 text (invalid byte at position {failure.start}). "
            "Save it as UTF-8 and upload it again."
        ) from failure
    if "\x00" in text:
        raise DocumentRejected("The file contains binary data, not text.")
    return text


class _TextExtractor(html.parser.HTMLParser):
    """Visible text only: script, style and similar elements are dropped with their content, entities are
    decoded, block elements become line breaks. Nothing is fetched or executed."""

    SKIPPED = {"script", "style", "template", "noscript", "head", "svg", "math", "iframe", "object"}
    BLOCKS = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "dd", "dt", "title",
    }  # fmt: skip

    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.collected = 0
        self.max_chars = max_chars

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skip_depth += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self.collected += len(data)
        if self.collected > self.max_chars:
            raise DocumentRejected(
                f"The document has more than {self.max_chars:,} characters of text; split it into smaller files."
            )
        self.parts.append(data)


def _html_to_text(markup: str) -> str:
    extractor = _TextExtractor(max_chars=settings.KNOWLEDGE_MAX_TEXT_CHARS)
    extractor.feed(markup)
    extractor.close()
    text = "".join(extractor.parts)
    # Collapse the runs of blank lines that nested blocks leave behind.
    lines = [" ".join(line.split()) for line in text.split("\n")]
    compact: list[str] = []
    for line in lines:
        if line or (compact and compact[-1]):
            compact.append(line)
    return "\n".join(compact)


def _pdf_to_text(raw: bytes, limits: ParseLimits) -> str:
    if not raw.startswith(b"%PDF-"):
        raise DocumentRejected("The file is not a PDF (it does not start with a PDF header).")
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    try:
        return _pdf_text_within_limits(PdfReader(io.BytesIO(raw), strict=False), limits)
    except LimitReachedError as bomb:
        # pypdf caps how much a stream may inflate (75 MB by default).
        raise DocumentRejected(
            "The PDF inflates to more data than allowed (a possible decompression bomb); it was not read."
        ) from bomb


def _pdf_text_within_limits(reader: Any, limits: ParseLimits) -> str:
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception as failure:  # noqa: BLE001
            raise DocumentRejected("The PDF is password-protected.") from failure
    declared_objects = int(reader.trailer.get("/Size", 0) or 0)
    if declared_objects > limits.max_pdf_objects:
        raise DocumentRejected(
            f"The PDF has {declared_objects:,} objects; the limit is {limits.max_pdf_objects:,}."
        )
    page_count = len(reader.pages)
    if page_count > limits.max_pdf_pages:
        raise DocumentRejected(f"The PDF has {page_count:,} pages; the limit is {limits.max_pdf_pages:,}.")
    parts: list[str] = []
    collected = 0
    for page in reader.pages:
        page_text = page.extract_text() or ""
        collected += len(page_text)
        if collected > limits.max_text_chars:
            raise DocumentRejected(
                f"The document has more than {limits.max_text_chars:,} characters of text; split it into smaller files."
            )
        parts.append(page_text)
    return "\n\n".join(parts)


def _docx_to_text(raw: bytes, limits: ParseLimits) -> str:
    if not raw.startswith(b"PK\x03\x04"):
        raise DocumentRejected("The file is not a DOCX document (it is not a ZIP package).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as failure:
        raise DocumentRejected("The DOCX file is damaged (its ZIP structure cannot be read).") from failure
    entries = archive.infolist()
    if len(entries) > limits.max_docx_entries:
        raise DocumentRejected(f"The DOCX package has {len(entries):,} parts; that is not a normal document.")
    # Declared sizes are checked before anything is decompressed (a zip bomb declares them honestly or
    # fails the CRC/size check when python-docx reads the part).
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_docx_uncompressed_bytes:
        raise DocumentRejected(
            f"The DOCX unpacks to {human_size(total)}; the limit is {human_size(limits.max_docx_uncompressed_bytes)}."
        )
    for entry in entries:
        if entry.file_size > 1024 * 1024 and entry.file_size > limits.max_docx_ratio * max(
            entry.compress_size, 1
        ):
            raise DocumentRejected(
                "The DOCX is compressed suspiciously well (a possible zip bomb); it was not opened."
            )
    if "word/document.xml" not in archive.namelist():
        raise DocumentRejected("The file is a ZIP package but not a Word document.")
    import docx

    document = docx.Document(io.BytesIO(raw))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)
