"""Variables in prompt bodies: ``$name`` or ``${name}`` (string.Template syntax; ``$$`` is a dollar sign).

Two kinds of values fill them:
- the template's own variables, set by the admin with each version (company name, tone...);
- a fixed set of runtime variables the chat supplies (RUNTIME_VARIABLES), some of them from end-users.

Filling is one pass of string.Template.substitute over the admin's body: values are inserted as data and
never parsed again, so a value containing ``${company}`` or ``$user_name`` stays literal. Runtime values
are also flattened to a single short line, so an end-user's display name cannot start a new paragraph of
instructions.
"""

import re
import string
import unicodedata

RUNTIME_VARIABLES = {
    "user_name": "the display name of the person chatting",
    "tenant_name": "your organisation's name",
    "today": "today's date (YYYY-MM-DD)",
}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
MAX_VARIABLES = 50
MAX_VALUE_CHARS = 2000
MAX_RUNTIME_VALUE_CHARS = 120


class PromptVariableError(ValueError):
    """A template or its values cannot be used; the message is shown to the admin."""


def _line_of(body: str, offset: int) -> int:
    return body.count("\n", 0, offset) + 1


def placeholders(body: str) -> set[str]:
    template = string.Template(body)
    if not template.is_valid():
        # Find the first bad "$" to point the admin at it.
        for match in template.pattern.finditer(body):
            if match.group("invalid") is not None:
                raise PromptVariableError(
                    f"Line {_line_of(body, match.start())}: '$' must be followed by a variable name "
                    "(write $$ for a literal dollar sign)."
                )
    return set(template.get_identifiers())


def parse_variables_text(text: str) -> dict[str, str]:
    """The console's "name = value" lines, one per variable."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep:
            raise PromptVariableError(f"Variables line {number}: write it as name = value.")
        values[name] = value.strip()
    check_variable_values(values)
    return values


def format_variables_text(values: dict[str, str]) -> str:
    return "\n".join(f"{name} = {value}" for name, value in values.items())


def check_variable_values(values: dict[str, str]) -> None:
    if len(values) > MAX_VARIABLES:
        raise PromptVariableError(f"At most {MAX_VARIABLES} variables per version.")
    for name, value in values.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise PromptVariableError(
                f"Variable name {name!r} must start with a letter or _ and use letters, digits and _ only."
            )
        if name in RUNTIME_VARIABLES:
            raise PromptVariableError(
                f"${name} is filled by the chat; choose another name for your variable."
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            raise PromptVariableError(
                f"The value of ${name} must be text of at most {MAX_VALUE_CHARS} characters."
            )


def check_template(body: str, values: dict[str, str]) -> None:
    """At publish time: every placeholder has a value (its own variable or a runtime one)."""
    check_variable_values(values)
    missing = sorted(placeholders(body) - set(values) - set(RUNTIME_VARIABLES))
    if missing:
        names = ", ".join(f"${name}" for name in missing)
        raise PromptVariableError(
            f"No value for {names}. Add it under Variables, or use one the chat fills: "
            + ", ".join(f"${name}" for name in RUNTIME_VARIABLES)
            + "."
        )


def clean_runtime_value(value: str) -> str:
    """One line of printable text: control characters and line breaks become spaces."""
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in value)
    text = " ".join(text.split())
    return text[:MAX_RUNTIME_VALUE_CHARS]


def render_prompt(body: str, values: dict[str, str], runtime: dict[str, str]) -> str:
    filled = {name: clean_runtime_value(runtime.get(name, "")) for name in RUNTIME_VARIABLES}
    filled.update(values)
    return string.Template(body).substitute(filled)
