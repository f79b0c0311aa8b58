"""Rules of the architecture that a code review could miss."""

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The provider simulator's own tests check that LiteLLM's real client works against it.
ALLOWED_OUTSIDE_GATEWAY = {Path("tests/devtools/test_llm_simulator.py")}
SKIPPED_DIRS = {".venv", "node_modules", ".git", "test-artifacts", ".devdata"}


def python_files() -> list[Path]:
    return [
        path.relative_to(REPO_ROOT)
        for path in REPO_ROOT.rglob("*.py")
        if not SKIPPED_DIRS & set(path.relative_to(REPO_ROOT).parts)
    ]


def imports_litellm(path: Path) -> bool:
    tree = ast.parse((REPO_ROOT / path).read_text())
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
