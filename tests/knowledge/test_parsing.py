"""Parsers on real files and on hostile ones: each bad file gets a clear reason, nothing crashes."""

import dataclasses

import pytest

from knowledge.chunking import chunk_text
from knowledge.parsing import DocumentRejected, ParseLimits, parse_document
from tests.knowledge.documents import make_docx, make_docx_zip_bomb, make_pdf, make_pdf_flate_bomb


def test_plain_text_and_markdown_are_read_as_utf8() -> None:
    assert (
        parse_document("notes.txt", "Grüße aus Köln\r\nzweite Zeile".encode())
        == "Grüße aus Köln\nzweite Zeile"
    )
    assert parse_document("readme.md", b"\xef\xbb\xbf# Title\n\nBody") == "# Title\n\nBody"


def test_html_keeps_visible_text_and_drops_scripts_and_styles() -> None:
    markup = (
        b"<html><head><title>t</title><style>body{color:red}</style></head><body>"
        b"<h1>Refunds</h1><p>Within <b>30&nbsp;days</b> &amp; unused.</p>"
        b"<script>alert('x')</script><p onclick=\"evil()\">Second</p></body></html>"
    )
    text = parse_document("policy.html", markup)
    assert "Refunds" in text and "30 days" in text  # &nbsp; decoded to a space, not dropped
    assert "& unused" in text
    assert "alert" not in text and "color:red" not in text and "evil" not in text
    assert "Second" in text


def test_pdf_text_is_extracted_from_every_page() -> None:
    text = parse_document(
        "handbook.pdf", make_pdf(["First page about travel.", "Second page about refunds."])
    )
    assert "First page about travel." in text
    assert "Second page about refunds." in text


def test_docx_paragraphs_are_extracted() -> None:
    text = parse_document("memo.docx", make_docx(["Dear team,", "The office closes at 6 pm on Fridays."]))
    assert text == "Dear team,\nThe office closes at 6 pm on Fridays."


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("tool.exe", b"MZ\x90\x00", "Files of type .exe are not supported."),
        ("noextension", b"hello", "Files of type (no extension) are not supported."),
        ("empty.txt", b"", "The file is empty."),
        ("latin1.txt", "café".encode("latin-1"), "The file is not UTF-8 text (invalid byte at position 3)."),
        ("binary.txt", b"abc\x00def", "The file contains binary data, not text."),
        ("blank.md", b"   \n\n  ", "No text found in the document."),
        ("fake.pdf", b"this is not a pdf", "The file is not a PDF"),
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n%%EOF garbage",
            "The file could not be read as PDF",
        ),
        ("fake.docx", b"plain text pretending", "The file is not a DOCX document"),
        ("broken.docx", b"PK\x03\x04" + b"\x00" * 50, "The DOCX file is damaged"),
    ],
)
def test_bad_files_are_refused_with_a_reason(name: str, content: bytes, reason: str) -> None:
    with pytest.raises(DocumentRejected) as refusal:
        parse_document(name, content)
    assert str(refusal.value).startswith(reason)


def test_docx_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    bomb = make_docx_zip_bomb(uncompressed_mb=60)
    assert len(bomb) < 200_000
    with pytest.raises(DocumentRejected, match="compressed suspiciously well"):
        parse_document("bomb.docx", bomb)


def test_docx_whose_parts_unpack_beyond_the_limit_is_refused() -> None:
    limits = dataclasses.replace(ParseLimits.from_settings(), max_docx_uncompressed_bytes=1000)
    with pytest.raises(DocumentRejected, match="unpacks to"):
        parse_document("large.docx", make_docx(["x" * 10]), limits)


def test_pdf_with_too_many_pages_is_refused() -> None:
    limits = dataclasses.replace(ParseLimits.from_settings(), max_pdf_pages=3)
    with pytest.raises(DocumentRejected, match="The PDF has 5 pages; the limit is 3."):
        parse_document("long.pdf", make_pdf([f"page {n}" for n in range(5)]), limits)


def test_pdf_declaring_too_many_objects_is_refused() -> None:
    limits = dataclasses.replace(ParseLimits.from_settings(), max_pdf_objects=4)
    with pytest.raises(DocumentRejected, match="objects; the limit is 4"):
        parse_document("objects.pdf", make_pdf(["a", "b"]), limits)


def test_file_over_the_size_limit_is_refused() -> None:
    limits = dataclasses.replace(ParseLimits.from_settings(), max_upload_bytes=10)
    with pytest.raises(DocumentRejected, match="The file is 11 bytes; the limit is 10 bytes."):
        parse_document("big.txt", b"x" * 11, limits)


def test_text_longer_than_the_limit_is_refused() -> None:
    limits = dataclasses.replace(ParseLimits.from_settings(), max_text_chars=100)
    with pytest.raises(DocumentRejected, match="more than 100 characters"):
        parse_document("long.txt", b"word " * 100, limits)


def test_chunks_are_deterministic_bounded_and_overlapping() -> None:
    text = "\n\n".join(
        f"Paragraph {n}. " + "The quick brown fox jumps over the lazy dog. " * 6 for n in range(20)
    )
    chunks = chunk_text(text, max_chars=400, overlap_chars=80)
    assert chunks == chunk_text(text, max_chars=400, overlap_chars=80)
    assert all(len(chunk) <= 400 for chunk in chunks)
    assert len(chunks) > 10
    # Consecutive chunks share text at the boundary.
    assert chunks[1].split()[0] in chunks[0]
    joined = " ".join(chunks)
    assert all(f"Paragraph {n}." in joined for n in range(20))


def test_one_enormous_word_is_still_cut() -> None:
    chunks = chunk_text("x" * 2000, max_chars=500)
    assert all(len(chunk) <= 500 for chunk in chunks) and "".join(chunks) == "x" * 2000


def test_pdf_decompression_bomb_is_refused() -> None:
    bomb = make_pdf_flate_bomb(inflated_mb=100)
    assert len(bomb) < 1_000_000
    with pytest.raises(DocumentRejected) as refusal:
        parse_document("bomb.pdf", bomb)
    assert str(refusal.value) == (
        "The PDF inflates to more data than allowed (a possible decompression bomb); it was not read."
    )
