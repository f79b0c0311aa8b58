from convosuite.markdown import render_untrusted_markdown


def test_script_in_model_output_stays_text() -> None:
    html = render_untrusted_markdown("Hello <script>alert('x')</script> there")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_markdown_is_rendered() -> None:
    html = render_untrusted_markdown("**bold** and `code`\n\n- one\n- two")
    assert "<strong>bold</strong>" in html
    assert "<code>code</code>" in html
    assert "<li>one</li>" in html


def test_javascript_links_and_event_handlers_are_removed() -> None:
    html = render_untrusted_markdown('[click](javascript:alert(1)) <img src=x onerror="alert(1)">')
    assert "javascript:" not in html
    assert "onerror" not in html.replace("&lt;img src=x onerror", "")
    assert "<img" not in html
