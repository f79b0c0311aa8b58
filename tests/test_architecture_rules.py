"""Rules of the architecture that a code review could miss."""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The provider simulator's own tests check that LiteLLM's real client works against it.
ALLOWED_OUTSIDE_GATEWAY = {Path("tests/devtools/test_llm_simulator.py")}
SKIPPED_DIRS = {".venv", "node_modules", ".git", "test-artifacts", ".devdata"}


def python_files() -> list[Path]:
    """Every .py file of the repository; skipped folders are never entered (.venv alone holds ~50,000)."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_DIRS and not name.startswith(".")]
        found.extend(Path(folder, name).relative_to(REPO_ROOT) for name in files if name.endswith(".py"))
    return found


def imports_litellm(path: Path) -> bool:
    text = (REPO_ROOT / path).read_text()
    if "litellm" not in text:
        return False  # no need to parse it
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "litellm" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "litellm":
            return True
    return False


def test_only_the_gateway_imports_litellm() -> None:
    offenders = [
        str(path)
        for path in python_files()
        if path.parts[0] != "gateway" and path not in ALLOWED_OUTSIDE_GATEWAY and imports_litellm(path)
    ]
    assert offenders == []


def test_the_rule_detects_an_import() -> None:
    assert imports_litellm(Path("gateway/provider.py"))


def test_the_layer_contract_is_kept() -> None:
    """.importlinter: each app imports only the layers below it, and apps side by side in a layer not each
    other, so no import cycle can span two apps (docs/architecture.md); only gateway/ imports litellm.
    `make test` runs it too; here so that running this file is enough to see a broken layer."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr

