"""Behaviour of amphora.kit.html: sanitising show notes, byte-bounded truncation, plain text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from amphora.kit.html import ELLIPSIS, LINK_REL, html_to_text, sanitize_html, truncate_html

# --- sanitize_html ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("<script>alert('x')</script>Hello", "Hello"),
        ("Hi<style>body { display: none }</style> there", "Hi there"),
        ('<img src="x" onerror="alert(1)">caption', "caption"),
        ('<iframe src="https://evil.example/"><b>inside</b></iframe>after', "after"),
        ('<p onclick="steal()">text</p>', "<p>text</p>"),
        ('<b style="color:red" class="x" id="y">bold</b>', "<b>bold</b>"),
        ("<svg onload=alert(1)><circle/></svg>ok", "ok"),
        ("<!-- secret --><em>shown</em>", "<em>shown</em>"),
        ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>z", "z"),
    ],
)
def test_dangerous_markup_is_removed(payload: str, expected: str) -> None:
    assert sanitize_html(payload) == expected


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java&#x09;script:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "/relative/path",
        "//evil.example/",
    ],
)
def test_links_with_other_schemes_lose_the_link_but_keep_the_text(href: str) -> None:
    result = sanitize_html(f'<p>Go <a href="{href}">here</a></p>')
    assert result == "<p>Go here</p>"
    assert "script" not in result.lower()
    assert "<a" not in result


@pytest.mark.parametrize(
    "href", ["https://example.com/ep?x=1", "http://example.com/", "mailto:host@example.com"]
)
def test_allowed_links_keep_href_and_get_rel(href: str) -> None:
    result = sanitize_html(f'<a href="{href}" target="_blank" rel="opener">site</a>')
    escaped = href.replace("&", "&amp;")
    assert result == f'<a href="{escaped}" rel="{LINK_REL}">site</a>'


def test_allowed_tags_are_kept() -> None:
    html = (
        "<p>Intro <strong>strong</strong> <b>b</b> <em>em</em> <i>i</i><br>next</p>"
        "<ul><li>one</li></ul><ol><li>two</li></ol>"
    )
    assert sanitize_html(html) == html


def test_other_tags_are_stripped_but_their_text_kept() -> None:
    html = (
        '<div class="notes"><h2>Title</h2><span>Body</span> <u>u</u>'
        "<table><tr><td>c</td></tr></table></div>"
    )
    assert sanitize_html(html) == "TitleBody uc"


def test_plain_text_passes_through() -> None:
    assert sanitize_html("Just a plain description.") == "Just a plain description."
    text = "Café \u2013 😀 «quotes» \"double\" 'single'"
    assert sanitize_html(text) == text


def test_plain_text_special_characters_are_escaped() -> None:
    assert sanitize_html("a < b & c") == "a &lt; b &amp; c"
    assert sanitize_html("Tom &amp; Jerry") == "Tom &amp; Jerry"


def test_whitespace_at_the_ends_is_trimmed() -> None:
    assert sanitize_html("  \n <p>hello</p>\n\t ") == "<p>hello</p>"
    assert sanitize_html("<script>x</script>   ") == ""


def test_unclosed_tags_are_closed() -> None:
    assert sanitize_html("<p>open <b>bold") == "<p>open <b>bold</b></p>"


def test_sanitize_with_max_bytes_truncates() -> None:
    html = "<p>" + "word " * 2000 + "</p>"
    result = sanitize_html(html, max_bytes=4000)
    assert len(result.encode()) <= 4000
    assert result.startswith("<p>word word")
    assert result.endswith(ELLIPSIS + "</p>")


def test_sanitize_is_idempotent() -> None:
    once = sanitize_html('<p>x <a href="https://e.com/?a=1&b=2">y</a> &amp; <b>z</p>')
    assert sanitize_html(once) == once


# --- truncate_html ------------------------------------------------------------------------


def _size(value: str) -> int:
    return len(value.encode("utf-8"))


class _Checker(HTMLParser):
    """Checks a fragment is balanced: every start tag closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "br":
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.ok = False


def _assert_well_formed(html: str) -> None:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.ok, html
    assert checker.stack == [], html
    # No cut-off tag or entity at the end of a text run.
    assert not re.search(r"<[^>]*$", html), html
    for entity in re.findall(r"&[^;<\s]*(?=[<\s]|$)", html):
        pytest.fail(f"broken entity {entity!r} in {html!r}")


SAMPLE = (
    "<p>Café <b>naïve &amp; 😀 <i>deep <em>nest</em></i></b> tail</p>\n"
    '<ul><li>Ünïcödé ✓</li><li><a href="https://example.com/?a=1&amp;b=2" '
    f'rel="{LINK_REL}">a link</a> &lt;ok&gt;</li></ul><p>last<br>line 🎙️</p>'
)


def test_short_input_is_unchanged() -> None:
    assert truncate_html(SAMPLE, len(SAMPLE.encode())) == SAMPLE
    assert truncate_html("plain", 5) == "plain"


@pytest.mark.parametrize("max_bytes", range(len(SAMPLE.encode())))
def test_every_cut_point_fits_and_is_well_formed(max_bytes: int) -> None:
    result = truncate_html(SAMPLE, max_bytes)
    assert len(result.encode("utf-8")) <= max_bytes
    if result:
        assert ELLIPSIS in result
        _assert_well_formed(result)
        # The text kept is a prefix of the original's text.
        kept = html_to_text(result).replace(ELLIPSIS, "")
        original = html_to_text(SAMPLE)
        assert original.replace("\n", "").startswith(kept.replace("\n", "").rstrip()), result
    else:
        assert max_bytes < 3 + len("<p></p>")


def test_many_cut_points_on_generated_text() -> None:
    words = ["naïve", "😀", "&amp;", "<b>bold</b>", "<i>it <b>x</b></i>", "日本語", "e\u0301"]
    body = " ".join(words[i % len(words)] for i in range(300))
    html = f"<p>{body}</p><ul><li>{body}</li></ul>"
    size = len(html.encode())
    for max_bytes in range(0, size + 5, 3):
        result = truncate_html(html, max_bytes)
        assert len(result.encode()) <= max_bytes
        result.encode("utf-8").decode("utf-8")  # never a split character
        if result and result != html:
            _assert_well_formed(result)
            assert result.endswith(("</p>", "</li></ul>", ELLIPSIS))


def test_cut_at_multibyte_boundary_keeps_whole_characters() -> None:
    # "é" is two bytes, the emoji four, the ellipsis three.
    assert truncate_html("Café😀 end", 3 + 1 + 3) == "Caf" + ELLIPSIS  # inside "é"
    assert truncate_html("Café😀 end", 5 + 3) == "Café" + ELLIPSIS
    assert truncate_html("Café😀 end", 5 + 3 + 3) == "Café" + ELLIPSIS  # inside the emoji
    assert truncate_html("Café😀 end", 5 + 4 + 3) == "Café😀" + ELLIPSIS


def test_cut_inside_a_tag_drops_the_whole_tag() -> None:
    html = '<p>Hello <a href="https://example.com/long/path">link text</a> more</p>'
    for max_bytes in range(_size("<p>Hello…</p>"), _size('<p>Hello <a href="https://example.com')):
        result = truncate_html(html, max_bytes)
        assert result == "<p>Hello…</p>"


def test_cut_inside_an_entity_drops_the_whole_entity() -> None:
    html = "<p>Tom &amp; Jerry</p>"
    assert truncate_html(html, _size("<p>Tom &am…</p>")) == "<p>Tom…</p>"
    assert truncate_html(html, _size("<p>Tom &amp;…</p>")) == "<p>Tom &amp;…</p>"


def test_nested_open_tags_are_closed() -> None:
    html = "<ul><li><b>Bold <i>and italic text here</i></b></li></ul>"
    expected = "<ul><li><b>Bold <i>an…</i></b></li></ul>"
    assert truncate_html(html, _size(expected)) == expected
    assert truncate_html(html, _size(expected) - 1) == "<ul><li><b>Bold <i>a…</i></b></li></ul>"


def test_ellipsis_goes_inside_the_last_element() -> None:
    html = "<p>first</p><p>second paragraph that is long</p>"
    assert truncate_html(html, _size("<p>first…</p>")) == "<p>first…</p>"


def test_apple_limit() -> None:
    html = sanitize_html("<p>" + "Épisode 😀 " * 1000 + "</p>")
    result = truncate_html(html, 4000)
    assert len(result.encode()) <= 4000
    assert len(result.encode()) > 3900
    assert result.endswith(ELLIPSIS + "</p>")


def test_tiny_budgets() -> None:
    assert truncate_html("long text", 0) == ""
    assert truncate_html("long text", 2) == ""
    assert truncate_html("long text", 3) == ELLIPSIS
    with pytest.raises(ValueError):
        truncate_html("x", -1)


# --- html_to_text -------------------------------------------------------------------------


def test_html_to_text() -> None:
    html = (
        "<p>Hello &amp; <b>welcome</b> to&nbsp;the show</p>\n  "
        "<ul><li>one</li> <li>two &lt;3</li></ul>"
        "line<br>break<script>alert(1)</script><style>p{}</style>"
        '<p>See <a href="https://e.com">the site</a>.</p>'
    )
    assert html_to_text(html) == (
        "Hello & welcome to the show\none\ntwo <3\nline\nbreak\nSee the site."
    )


def test_html_to_text_plain_and_entities() -> None:
    assert html_to_text("plain  text\n wrapped") == "plain text wrapped"
    assert html_to_text("&eacute;t&#233; &#x1F600; &quot;q&quot;") == 'été 😀 "q"'
    assert html_to_text("") == ""


def test_html_to_text_double_break_keeps_one_blank_line() -> None:
    assert html_to_text("a<br><br><br><br>b") == "a\n\nb"


def test_html_to_text_of_sanitised_and_truncated() -> None:
    html = sanitize_html("<p>Tom &amp; Jerry <b>chase</b></p>")
    result = truncate_html(html, _size("<p>Tom &amp; Jerry…</p>"))
    assert html_to_text(result) == "Tom & Jerry…"
