"""The one place knowledge text is encrypted and decrypted with the current tenant's data key (keys.crypto).

Document and chunk text are stored as tokens from these functions; raw SQL reads (retrieval) decrypt them here
too. The vectors stay in the clear so that the HNSW index can search them.
"""

from keys.crypto import decrypt_text, encrypt_text


def encrypt_for_tenant(text: str, *, bulk: bool = False) -> str:
    """bulk: document text and chunks at ingestion, not registered for log redaction (thousands of
    texts would push the chat's prompts out of the bounded registry; convosuite.log_redaction)."""
    return encrypt_text(text, remember=not bulk) if text else ""


def decrypt_for_tenant(token: str) -> str:
    return decrypt_text(token) if token else ""
