"""Split a document's text into overlapping passages for embedding and citation.

Deterministic: the same text always gives the same chunks, so an interrupted ingestion resumes by ordinal.
Passages follow paragraph and sentence boundaries where they can and stay under `max_chars` (about 200
MiniLM tokens for English prose, inside the model's 256-token window).
"""

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str, max_chars: int) -> list[str]:
    """Paragraphs, then sentences, then words: each piece at most max_chars."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            while len(sentence) > max_chars:
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > max_chars // 2 else max_chars
                pieces.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                pieces.append(sentence)
    return pieces


def chunk_text(text: str, max_chars: int = 800, overlap_chars: int = 120) -> list[str]:
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_chars):
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
            continue
        chunks.append(current)
        # Carry the end of the previous passage over, so a fact split across the boundary is still found.
        tail = current[-overlap_chars:]
        space = tail.find(" ")
        tail = tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail
        current = f"{tail} {piece}" if len(tail) + 1 + len(piece) <= max_chars else piece
    if current:
        chunks.append(current)
    return chunks
