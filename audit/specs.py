"""The chains a tenant has. Also used by migrations (their historical models are not registered)."""

from audit.chain import ChainSpec

# Texts a tenant may export redacted enter the hash as salted commitments (docs/audit.md).
MODEL_CALLS = ChainSpec(name="model_calls", sensitive=frozenset({"messages", "response", "tool_calls"}))
AUDIT_EVENTS = ChainSpec(name="audit_events")
