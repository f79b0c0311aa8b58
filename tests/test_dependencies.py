"""The lock files: every pin exact and hash-checked, the development lock on top of the production one, and the
rules on litellm (docs/development.md)."""

import re
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    return {name.lower(): version for name, version in PIN.findall((REQUIREMENTS / lock).read_text())}


def test_every_requirement_in_every_lock_is_pinned_with_a_hash() -> None:
    for lock in ("installer.lock", "prod.lock", "dev.lock"):
        blocks = re.split(r"\n(?=\S)", (REQUIREMENTS / lock).read_text())
        requirements = [block for block in blocks if not block.startswith("#") and block.strip()]
        assert requirements, lock
        for block in requirements:
            assert PIN.match(block), f"{lock}: not pinned with ==: {block.splitlines()[0]}"
            assert "--hash=sha256:" in block, f"{lock}: no hash for {block.splitlines()[0]}"


def test_development_lock_pins_the_production_versions() -> None:
    production, development = pins("prod.lock"), pins("dev.lock")
    assert set(production) <= set(development)
    assert {name: development[name] for name in production} == production


def test_production_lock_ships_no_test_or_development_tool() -> None:
    production = pins("prod.lock")
    for tool in ("pytest", "playwright", "mypy", "ruff", "django-oauth-toolkit", "schemathesis", "factory-boy"):
        assert tool not in production


def test_installer_is_pinned_first() -> None:
    assert set(pins("installer.lock")) == {"pip"}


def test_litellm_is_a_vetted_release() -> None:
    major, minor, patch = (int(part) for part in pins("prod.lock")["litellm"].split("."))
    version = (major, minor, patch)
    assert version >= (1, 84, 0), "known CVEs are fixed only from 1.84.0"
    assert version not in {(1, 82, 7), (1, 82, 8)}, "releases that carried a credential stealer"
    assert (major, minor) != (1, 107), "the 1.107 line is reported compromised"
