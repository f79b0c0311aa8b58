"""The hand-written stylesheet survives merges: braces balance and no conflict marker is left in it (either
silently drops every rule after it in the browser)."""

import re
from pathlib import Path

STYLESHEET = Path(__file__).resolve().parents[1] / "static" / "css" / "app.css"


def test_app_css_braces_balance_and_no_merge_markers_remain() -> None:
    text = STYLESHEET.read_text()
    without_comments = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    depth = 0
    for line_number, line in enumerate(without_comments.splitlines(), start=1):
        assert not re.match(r"^(<{7}|={7}|>{7})", line), f"merge marker left in app.css: {line!r}"
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"a closing brace without its opening one near line {line_number}"
    assert depth == 0, "an unclosed block in app.css"
