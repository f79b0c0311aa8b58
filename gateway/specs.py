"""The gateway's hash chain (registered with audit in gateway/apps.py). Also used by migrations (their
historical models are not registered)."""

from audit.chain import ChainSpec

# Texts a tenant may export redacted enter the hash as salted commitments (docs/audit.md).
# A model call enters its chain when it becomes final (sealed, audit.chain.seal_in_chain); its chain
# timestamp is that moment (finished_at), while created_at keeps when the call was claimed.
MODEL_CALLS = ChainSpec(
    name="model_calls",
    sensitive=frozenset({"messages", "response", "tool_calls"}),
    timestamp_field="finished_at",
)
