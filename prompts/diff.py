"""Readable differences between two prompt versions: body line by line (difflib), then settings."""

import difflib
from dataclasses import dataclass

from prompts.models import PromptVersion
from prompts.variables import format_variables_text


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "same", "gap"
    old_number: int | None
    new_number: int | None
    text: str


@dataclass(frozen=True)
class SettingChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class VersionDiff:
    old: PromptVersion
    new: PromptVersion
    lines: list[DiffLine]
    settings: list[SettingChange]
    added: int
    removed: int

    @property
    def identical(self) -> bool:
        return not self.added and not self.removed and not self.settings


def diff_lines(old_text: str, new_text: str, context: int = 3) -> list[DiffLine]:
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    result: list[DiffLine] = []
    for group_index, group in enumerate(matcher.get_grouped_opcodes(context)):
        if group_index:
            result.append(DiffLine("gap", None, None, ""))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                result.extend(
                    DiffLine("same", i + 1, j + 1, old_lines[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                )
                continue
            if tag in ("replace", "delete"):
                result.extend(DiffLine("del", i + 1, None, old_lines[i]) for i in range(i1, i2))
            if tag in ("replace", "insert"):
                result.extend(DiffLine("add", None, j + 1, new_lines[j]) for j in range(j1, j2))
    return result


def _settings_of(version: PromptVersion) -> dict[str, str]:
    return {
        "Model": version.model,
        "Temperature": str(version.temperature),
        "Max tokens": str(version.max_tokens),
        "Knowledge bases": ", ".join(str(kb) for kb in version.knowledge_base_ids) or "none",
        "Variables": format_variables_text(version.variables) or "none",
    }


def diff_versions(old: PromptVersion, new: PromptVersion) -> VersionDiff:
    lines = diff_lines(old.body, new.body)
    before, after = _settings_of(old), _settings_of(new)
    changes = [
        SettingChange(name, before[name], after[name]) for name in before if before[name] != after[name]
    ]
    return VersionDiff(
        old=old,
        new=new,
        lines=lines,
        settings=changes,
        added=sum(1 for line in lines if line.kind == "add"),
        removed=sum(1 for line in lines if line.kind == "del"),
    )
