"""The audit app's own chain. Also used by migrations (their historical models are not registered).
Other apps define and register their chains themselves (gateway/specs.py, gateway/apps.py)."""

from audit.chain import ChainSpec

AUDIT_EVENTS = ChainSpec(name="audit_events")
