"""Model output and user input are untrusted: Markdown is rendered with raw HTML turned into text, then
the result is sanitised with an allow-list (nh3) as a second line of defence. The same function renders a
finished answer and the partial answer shown while it streams (render_partial_markdown). Used for chat
messages and for the knowledge passages their citations open."""

import re

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

_ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip

# Python-Markdown writes a fenced block's language as class="language-x"; the page shows it as a label and
# highlights by it (static/js/chat_markdown.js). It travels as data-lang, the only attribute code may keep,
# so a model cannot put our own class names on its output.
_FENCE_LANGUAGE = re.compile(r'<pre><code class="language-([\w#+.-]{1,40})">')
_FENCE_LINE = re.compile(r"^ {0,3}(```|~~~)", re.M)


def render_untrusted_markdown(text: str) -> SafeString:
    converter = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    # Without these two, Python-Markdown passes raw HTML (e.g. <script>) straight through.
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    html = _FENCE_LANGUAGE.sub(r'<pre data-lang="\1"><code data-lang="\1">', converter.convert(text))
    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "pre": {"data-lang"}, "code": {"data-lang"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above


def render_partial_markdown(text: str) -> SafeString:
    """An answer still being written: a code block whose closing fence has not arrived yet is closed, so
    it shows as code rather than as paragraphs of backticks until the end. Same rendering and sanitising."""
    fences = _FENCE_LINE.findall(text)
    if len(fences) % 2:
        text = text.rstrip("\n") + "\n" + fences[-1] + "\n"
    return render_untrusted_markdown(text)
