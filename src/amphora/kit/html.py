"""Show-notes HTML: sanitising (nh3), byte-bounded truncation and conversion to plain text.

Descriptions end up in RSS feeds that podcast apps render, so only the small set of tags Apple
documents for descriptions (``p ol ul li a``) plus a few harmless inline ones survive. Links
keep only an ``http``/``https``/``mailto`` ``href`` and always get
``rel="noopener noreferrer nofollow"``. Script-like elements are removed with their contents.

``truncate_html`` works on sanitised HTML: it never cuts through a tag, an entity or a
multi-byte character, closes the elements it left open and stays within the byte budget.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

__all__ = [
    "ALLOWED_TAGS",
    "ELLIPSIS",
    "LINK_REL",
    "html_to_text",
    "sanitize_html",
    "truncate_html",
]

ALLOWED_TAGS: frozenset[str] = frozenset(
    {"p", "ol", "ul", "li", "a", "br", "strong", "b", "em", "i"}
)
LINK_REL = "noopener noreferrer nofollow"
ELLIPSIS = "…"

_URL_SCHEMES = {"http", "https", "mailto"}
# Removed together with everything inside them (never left behind as text).
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "noframes",
    "noscript",
    "noembed",
    "object",
    "embed",
    "template",
    "svg",
    "math",
    "textarea",
    "select",
    "xmp",
    "title",
    "head",
}
_VOID_TAGS = frozenset({"br"})

# A link whose href was refused keeps its text but loses the (now pointless) element.
_HREFLESS_LINK = re.compile(r'<a rel="' + re.escape(LINK_REL) + r'">(.*?)</a>', re.DOTALL)

# Tokens of serialised HTML: a tag (attribute values may contain ">" inside quotes),
# an entity, or a run of other text.
_TOKEN = re.compile(
    r"""(?P<tag></?[A-Za-z][^<>"']*(?:(?:"[^"]*"|'[^']*')[^<>"']*)*>)"""
    r"|(?P<entity>&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)"
    r"|(?P<text>[^<&]+|[<&])"
)
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)")


def sanitize_html(value: str, *, max_bytes: int | None = None) -> str:
    """Return ``value`` with everything but the allowed tags and link targets removed.

    Plain text passes through unchanged apart from nh3's escaping of ``<``, ``>`` and ``&``.
    With ``max_bytes`` the result is also cut with :func:`truncate_html`.
    """
    cleaned = nh3.clean(
        value,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={"a": {"href"}},
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
        link_rel=LINK_REL,
        strip_comments=True,
    )
    cleaned = _HREFLESS_LINK.sub(r"\1", cleaned).strip()
    if max_bytes is not None:
        cleaned = truncate_html(cleaned, max_bytes)
    return cleaned


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def _closing(names: list[str]) -> str:
    return "".join(f"</{name}>" for name in reversed(names))


def _tag_info(tag: str) -> tuple[str, bool]:
    """The lower-case name of a tag token and whether it is a closing tag."""
    match = _TAG_NAME.match(tag)
    assert match is not None  # guaranteed by _TOKEN
    return match.group(1).lower(), tag.startswith("</")


def truncate_html(value: str, max_bytes: int) -> str:
    """Cut HTML to at most ``max_bytes`` UTF-8 bytes, closing open tags and adding "…".

    Input that already fits is returned unchanged. The cut never splits a tag, an entity or a
    character; the returned string, closing tags and ellipsis included, is never longer than
    ``max_bytes`` bytes. Elements left empty by the cut are dropped, and the ellipsis goes
    inside the last element rather than after it.
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    if _utf8_len(value) <= max_bytes:
        return value
    budget = max_bytes - _utf8_len(ELLIPSIS)
    if budget < 0:
        return ""

    out: list[tuple[str, str]] = []  # (kind, piece): kind is "open", "close", "void" or "text"
    stack: list[tuple[str, int]] = []  # open elements: (name, index of the start tag in out)
    used = 0  # bytes in ``out``
    closing_cost = 0  # bytes needed to close everything in ``stack``

    for match in _TOKEN.finditer(value):
        token = match.group(0)
        size = _utf8_len(token)
        kind = match.lastgroup
        if kind == "tag":
            name, is_end = _tag_info(token)
            if is_end:
                if all(open_name != name for open_name, _ in stack):
                    continue  # stray end tag: nothing to close
                # Closing tags are already paid for in ``closing_cost``.
                while stack:
                    open_name, _ = stack.pop()
                    close = f"</{open_name}>"
                    out.append(("close", close))
                    used += _utf8_len(close)
                    closing_cost -= _utf8_len(close)
                    if open_name == name:
                        break
                continue
            if name in _VOID_TAGS or token.endswith("/>"):
                if used + size + closing_cost > budget:
                    break
                out.append(("void", token))
                used += size
                continue
            close_cost = _utf8_len(f"</{name}>")
            if used + size + closing_cost + close_cost > budget:
                break
            stack.append((name, len(out)))
            out.append(("open", token))
            used += size
            closing_cost += close_cost
            continue
        if used + size + closing_cost <= budget:
            out.append(("text", token))
            used += size
            continue
        if kind == "text":
            # Keep as many whole characters as fit.
            room = max(budget - used - closing_cost, 0)
            kept = token.encode("utf-8")[:room].decode("utf-8", errors="ignore")
            if kept:
                out.append(("text", kept))
        break

    _tidy_cut(out, stack)
    return "".join(piece for _, piece in out) + ELLIPSIS + _closing([n for n, _ in stack])


def _tidy_cut(out: list[tuple[str, str]], stack: list[tuple[str, int]]) -> None:
    """Make the cut end cleanly: no empty elements, no trailing space, "…" inside the text."""

    def trim() -> None:
        while out:
            kind, piece = out[-1]
            if kind == "open" and stack and stack[-1][1] == len(out) - 1:
                out.pop()  # element opened right before the cut, left empty
                stack.pop()
            elif kind == "text" and not piece.strip():
                out.pop()
            elif kind == "text" and piece != piece.rstrip():
                out[-1] = (kind, piece.rstrip())
            else:
                return

    trim()
    if out and out[-1][0] == "close":
        # "<p>tail</p>…" reads worse than "<p>tail…</p>": reopen the last element.
        piece = out.pop()[1]
        stack.append((piece[2:-1], -1))
        trim()


_BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "br",
        "tr",
        "table",
        "blockquote",
        "pre",
        "section",
        "article",
        "header",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "dt",
        "dd",
    }
)
_SKIP_CONTENT_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})


class _TextExtractor(HTMLParser):
    """Collects text; source whitespace is collapsed and block boundaries become newlines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def _break(self) -> None:
        # One newline per block boundary, however many boundaries (and spaces) meet.
        for part in reversed(self.parts):
            if part.strip(" "):
                if not part.endswith("\n"):
                    self.parts.append("\n")
                return

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_CONTENT_TAGS:
            self._skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_CONTENT_TAGS:
            self._skip = max(self._skip - 1, 0)
        elif tag in _BLOCK_TAGS and tag != "br":
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(_WHITESPACE.sub(" ", data))


_WHITESPACE = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(value: str) -> str:
    """Plain text of an HTML fragment: tags stripped, entities unescaped, blocks on own lines.

    Whitespace inside a line collapses to single spaces; at most one blank line separates
    blocks; script and style contents are dropped.
    """
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    joined = "\n".join(lines)
    return _BLANK_RUNS.sub("\n\n", joined).strip()
