"""Our own feed checker: Apple's rules, PSP-1 and the Podcasting 2.0 namespace table.

``check_feed`` reads any RSS document (ours or an imported one) and lists what Apple Podcasts
or a Podcasting 2.0 app would reject or ignore (``error``) and what is only recommended
(``warning``), each with a plain-language message and a fix a creator can act on. It backs
both the test suite and the creator-facing feed check, so messages talk about show settings
rather than XML where they can. ``RULES`` is the catalogue of every code it can report.
Sources: STANDARDS.md §1 (Apple, PSP-1) and §3 (namespace table).

The parser never resolves entities or touches the network: the input may be a stranger's feed.

The checks are split by source: :mod:`.apple` (Apple and PSP-1), :mod:`.namespace`
(Podcasting 2.0), with the code catalogue in :mod:`.catalogue` and shared reading helpers in
:mod:`.reading`. Import from here: the public names are re-exported.
"""

from __future__ import annotations

from lxml import etree  # type: ignore[import-untyped]

from amphora.feed.rules.apple import (
    APPLE_ENCLOSURE_TYPES,
    check_channel,
    check_items,
    check_surrounding_spaces,
)
from amphora.feed.rules.catalogue import RULES, Problem, Rule, Severity, _Report
from amphora.feed.rules.namespace import check_podcast_tags
from amphora.feed.rules.reading import CONTENT_NS, ITUNES_NS, PODCAST_NS

__all__ = ["APPLE_ENCLOSURE_TYPES", "RULES", "Problem", "Rule", "Severity", "check_feed"]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def check_feed(xml: bytes) -> list[Problem]:
    """Every problem found in the RSS document ``xml``: channel first, then item by item,
    then the Podcasting 2.0 tags."""
    report = _Report()
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        report.add("channel", "feed.not_xml", detail=str(exc))
        return report.problems
    channel = root.find("channel") if root.tag == "rss" else None
    if channel is None or root.get("version") != "2.0":
        report.add("channel", "feed.not_rss")
        return report.problems
    _check_namespaces(root, report)
    check_channel(channel, report)
    wheres = check_items(channel, report)
    check_podcast_tags(channel, wheres, report)
    check_surrounding_spaces(channel, wheres, report)
    return report.problems


def _check_namespaces(root: etree._Element, report: _Report) -> None:
    used = {el.tag[1:].split("}", 1)[0] for el in root.iter() if str(el.tag).startswith("{")}
    for prefix, uri in (("itunes", ITUNES_NS), ("content", CONTENT_NS), ("podcast", PODCAST_NS)):
        for found in sorted(used):
            if found != uri and found.lower().rstrip("/") == uri.lower().rstrip("/"):
                report.add("channel", "feed.namespace_uri", prefix=prefix, found=found, uri=uri)
