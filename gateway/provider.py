"""The one place LiteLLM is imported (the only code of the project that may import it)."""

import functools
import os
from typing import Any


@functools.cache
def litellm_module() -> Any:
    """LiteLLM takes ~3 s to import: load it on the first model call, not in every web process (the import
    is inside this function for that reason, not to dodge a cycle)."""
    # Use LiteLLM's bundled price map: never fetch it from the internet at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # LiteLLM must not phone home or print request bodies.
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm
