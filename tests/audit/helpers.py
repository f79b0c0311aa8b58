"""Helpers for the audit tests: make model calls through the real gateway, export, load the verifier."""

import importlib.util
import json
import uuid
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.service import complete
from tenants.models import Tenant

REPO_ROOT = Path(__file__).resolve().parents[2]
VERIFIER_PATH = REPO_ROOT / "verifier" / "verify_export.py"


def load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", VERIFIER_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_calls(tenant: Tenant, count: int, user_id: int | None = None) -> list[uuid.UUID]:
    """Model calls through gateway.complete (caller is inside tenant_context, simulator running)."""
    request_ids = []
    for index in range(count):
        request_id = uuid.uuid4()
        complete(
            tenant_schema=tenant.schema_name,
            request_id=request_id,
            user_id=user_id,
            model="sim-model",
            messages=[{"role": "user", "content": f"question {index}: what is the secret plan?"}],
        )
        request_ids.append(request_id)
    return request_ids


def read_export(path: Path) -> tuple[list[dict[str, Any]], bytes, bytes]:
    with zipfile.ZipFile(path) as archive:
        lines = [json.loads(line) for line in archive.read("records.jsonl").splitlines() if line.strip()]
        return lines, archive.read("manifest.json"), archive.read("manifest.sig")


def write_export(path: Path, lines: list[dict[str, Any]], manifest: bytes, signature: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("records.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
        archive.writestr("manifest.json", manifest)
        archive.writestr("manifest.sig", signature)
    return path
