"""Search highlights: escaped text, marked words, prefix on the last word, snippet windows."""

from __future__ import annotations

from amphora.show.search import highlight, terms


def test_marks_whole_words_and_the_last_word_as_prefix() -> None:
    words = terms("storm keep")
    marked = highlight("The storms and the keeper's log", words)
    assert marked == "The storms and the <mark>keeper</mark>&#x27;s log"
    assert highlight("A storm at sea", words) == "A <mark>storm</mark> at sea"


def test_text_is_escaped_so_notes_cannot_inject_html() -> None:
    marked = highlight("<script>alert('storm')</script>", terms("storm"))
    assert "<script>" not in marked and "&lt;script&gt;" in marked
    assert "<mark>storm</mark>" in marked


def test_diacritics_and_case_are_folded_like_the_index() -> None:
    assert highlight("Café CRÈME", terms("cafe creme")) == "<mark>Café</mark> <mark>CRÈME</mark>"


def test_snippet_window_around_the_first_match() -> None:
    body = (
        " ".join(f"w{i}" for i in range(100))
        + " lighthouse "
        + " ".join(f"x{i}" for i in range(100))
    )
    snippet = highlight(body, terms("lighthouse"), window=12)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>lighthouse</mark>" in snippet
    assert len(snippet.split()) == 12
    assert highlight("short text", terms("nothing"), window=12) == "short text"
