"""Model output and user input are untrusted: Markdown is rendered with raw HTML turned into text, then
the result is sanitised with an allow-list (nh3) as a second line of defence."""

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

_ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip


def render_untrusted_markdown(text: str) -> SafeString:
    converter = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
    # Without these two, Python-Markdown passes raw HTML (e.g. <script>) straight through.
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    html = converter.convert(text)
    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above
