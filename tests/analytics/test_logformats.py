"""Access-log lines as data: Apache/nginx combined and CloudFront standard logs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amphora.analytics.logformats import (
    CLOUDFRONT_FIELDS,
    CloudFrontParser,
    CombinedParser,
    LogLine,
    parse_combined,
    parse_timestamp,
    parser_for,
)

APPLE = "AppleCoreMedia/1.0.0.20E247 (iPhone; U; CPU OS 16_4 like Mac OS X; en_us)"
EPISODE = (
    "/e/lighthouse/0193a1c2-7e4b-7c3d-9f10-2b3c4d5e6f70/0193a1c2-7e4b-7c3d-9f10-2b3c4d5e6f71.mp3"
)

# --- combined ------------------------------------------------------------------------------------


def test_a_combined_line() -> None:
    line = parse_combined(
        f'203.0.113.7 - - [10/Oct/2026:13:55:36 -0700] "GET {EPISODE}?key=abc&x=1 HTTP/1.1" '
        f'206 1048576 "https://example.com/player" "{APPLE}"'
    )
    assert line == LogLine(
        at=datetime(2026, 10, 10, 20, 55, 36, tzinfo=UTC),
        method="GET",
        path=EPISODE,
        query="key=abc&x=1",
        status=206,
        bytes_sent=1048576,
        client_address="203.0.113.7",
        user_agent=APPLE,
        referer="https://example.com/player",
        request_id=None,
    )
    assert line.at.utcoffset() is not None and line.at.utcoffset().total_seconds() == 0


def test_ipv6_user_dashes_and_no_body() -> None:
    line = parse_combined(
        '2001:db8:7:1::10 - frank [01/Jan/2027:00:00:01 +0130] "HEAD /a.mp3 HTTP/2.0" 200 - "-" "-"'
    )
    assert line is not None
    assert line.client_address == "2001:db8:7:1::10"
    assert line.at == datetime(2026, 12, 31, 22, 30, 1, tzinfo=UTC)  # +01:30 east of UTC
    assert (line.method, line.status, line.bytes_sent) == ("HEAD", 200, 0)
    assert line.user_agent is None and line.referer is None and line.query is None


def test_quotes_and_bytes_escaped_inside_fields() -> None:
    apache = parse_combined(
        '198.51.100.4 - - [10/Oct/2026:13:55:36 +0000] "GET /a.mp3 HTTP/1.1" 200 5 "-" '
        '"Podcast \\"Player\\" 2.0 \\\\ done"'
    )
    assert apache is not None and apache.user_agent == 'Podcast "Player" 2.0 \\ done'
    nginx = parse_combined(
        '198.51.100.4 - - [10/Oct/2026:13:55:36 +0000] "GET /a.mp3 HTTP/1.1" 200 5 '
        '"https://example.com/?q=\\x22x\\x22" "Caf\\xC3\\xA9Cast/1.0 \\x22beta\\x22"'
    )
    assert nginx is not None
    assert nginx.user_agent == 'CaféCast/1.0 "beta"'
    assert nginx.referer == 'https://example.com/?q="x"'


def test_percent_encoded_paths_are_decoded_and_queries_kept() -> None:
    line = parse_combined(
        '198.51.100.4 - - [10/Oct/2026:13:55:36 +0000] "GET /shows/caf%C3%A9/ep%201.mp3?a=%20 '
        'HTTP/1.1" 200 5 "-" "X"'
    )
    assert line is not None and line.path == "/shows/café/ep 1.mp3" and line.query == "a=%20"


def test_common_format_extra_fields_and_absolute_targets() -> None:
    common = parse_combined(
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET /a.mp3 HTTP/1.0" 200 7'
    )
    assert common is not None and common.user_agent is None and common.bytes_sent == 7
    extra = parse_combined(
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET /a.mp3 HTTP/1.1" 200 7 "-" "UA/1" '
        '"198.51.100.9" rt=0.004'
    )
    assert extra is not None and extra.user_agent == "UA/1"
    proxy = parse_combined(
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET http://cdn.example.com/a.mp3?x HTTP/1.1" '
        '200 7 "-" "UA/1"'
    )
    assert proxy is not None and (proxy.path, proxy.query) == ("/a.mp3", "x")
    old = parse_combined('192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET /a.mp3" 200 7 "-" "UA"')
    assert old is not None and old.path == "/a.mp3"  # HTTP/0.9: no protocol


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "#Version: 1.0",
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "-" 400 0 "-" "-"',  # no request at all
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"',  # TLS
        '192.0.2.1 - - [32/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',  # no day
        '192.0.2.1 - - [10/Okt/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',  # month
        '192.0.2.1 - - [10/Oct/2026 13:55:36 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',  # shape
        '192.0.2.1 - - [10/Oct/2026:13:55:36 0000] "GET /a HTTP/1.1" 200 1 "-" "-"',  # zone
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 2000 1 "-" "-"',
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 many "-" "-"',
        '192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET a.mp3 HTTP/1.1" 200 1 "-" "-"',
        '{"remote_addr": "192.0.2.1", "request": "GET /a HTTP/1.1"}',
    ],
)
def test_malformed_combined_lines(text: str) -> None:
    assert parse_combined(text) is None


def test_timestamps() -> None:
    assert parse_timestamp("29/Feb/2028:23:59:59 -0000") == datetime(
        2028, 2, 29, 23, 59, 59, tzinfo=UTC
    )
    assert parse_timestamp("01/Mar/2027:00:30:00 +0100") == datetime(
        2027, 2, 28, 23, 30, tzinfo=UTC
    )
    assert parse_timestamp("29/Feb/2027:00:00:00 +0000") is None  # not a leap year
    assert parse_timestamp("1/Mar/2027:00:30:00 +0100") is None
    assert parse_timestamp("01/Mar/2027:24:30:00 +0100") is None


def test_parser_for() -> None:
    assert isinstance(parser_for("combined"), CombinedParser)
    assert isinstance(parser_for("cloudfront"), CloudFrontParser)
    assert not CombinedParser().directive("#Fields: date time")
    with pytest.raises(ValueError, match="unknown log format"):
        parser_for("w3c")


# --- CloudFront ----------------------------------------------------------------------------------


def _cloudfront(values: dict[str, str], fields: tuple[str, ...] = CLOUDFRONT_FIELDS) -> str:
    return "\t".join(values.get(name, "-") for name in fields)


def _values(**extra: str) -> dict[str, str]:
    return {
        "date": "2026-12-04",
        "time": "21:02:31",
        "x-edge-location": "LAX1-C1",
        "sc-bytes": "1049012",
        "c-ip": "203.0.113.7",
        "cs-method": "GET",
        "cs(Host)": "d111111abcdef8.cloudfront.net",
        "cs-uri-stem": EPISODE,
        "sc-status": "206",
        "cs(Referer)": "-",
        "cs(User-Agent)": "AppleCoreMedia/1.0.0.20E247%20(iPhone;%20U;%20CPU%20OS%2016_4)",
        "cs-uri-query": "-",
        "x-edge-result-type": "Hit",
        "x-edge-request-id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
        "cs-protocol": "https",
        "sc-content-len": "1048576",
        "sc-range-start": "0",
        "sc-range-end": "1048575",
        **extra,
    }


def test_a_cloudfront_line_in_the_documented_order() -> None:
    parser = CloudFrontParser()
    assert parser.directive("#Version: 1.0")
    line = parser.parse(_cloudfront(_values()))
    assert line == LogLine(
        at=datetime(2026, 12, 4, 21, 2, 31, tzinfo=UTC),
        method="GET",
        path=EPISODE,
        query=None,
        status=206,
        bytes_sent=1048576,  # the body: sc-bytes counts the response headers too
        client_address="203.0.113.7",
        user_agent="AppleCoreMedia/1.0.0.20E247 (iPhone; U; CPU OS 16_4)",
        referer=None,
        request_id="SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
    )


def test_the_probe_stays_two_bytes_and_cut_responses_keep_what_went_out() -> None:
    parser = CloudFrontParser()
    probe = parser.parse(_cloudfront(_values(**{"sc-bytes": "411", "sc-content-len": "2"})))
    assert probe is not None and probe.bytes_sent == 2
    cut = parser.parse(_cloudfront(_values(**{"sc-bytes": "5000", "sc-content-len": "99999"})))
    assert cut is not None and cut.bytes_sent == 5000
    unknown = parser.parse(_cloudfront(_values(**{"sc-bytes": "5000", "sc-content-len": "-"})))
    assert unknown is not None and unknown.bytes_sent == 5000


def test_the_fields_header_sets_the_columns() -> None:
    fields = (
        "c-ip",
        "time",
        "date",
        "cs-uri-stem",
        "cs(User-Agent)",
        "sc-status",
        "cs-method",
        "sc-bytes",
        "cs(Referer)",
        "cs-uri-query",
    )
    parser = CloudFrontParser()
    parser.directive("#Version: 1.0")
    parser.directive("#Fields: " + " ".join(fields))
    values = _values(**{"c-ip": "2001:db8::5", "cs-uri-query": "key=abc"})
    values["cs(Referer)"] = "https://example.com/page%3Fa%3D1"
    line = parser.parse(_cloudfront(values, fields))
    assert line is not None
    assert line.client_address == "2001:db8::5" and line.query == "key=abc"
    assert line.bytes_sent == 1049012  # no sc-content-len column: sc-bytes as it is
    assert line.referer == "https://example.com/page?a=1"
    assert line.request_id is None and line.at == datetime(2026, 12, 4, 21, 2, 31, tzinfo=UTC)
    # The documented order no longer applies to this file.
    assert parser.parse(_cloudfront(_values())) is None


def test_a_header_without_the_needed_fields_makes_every_line_malformed() -> None:
    parser = CloudFrontParser()
    parser.directive("#Fields: date time x-edge-location sc-bytes")
    assert parser.parse("2026-12-04\t21:02:31\tLAX1\t100") is None


@pytest.mark.parametrize(
    "values",
    [
        _values(date="2026-13-04"),
        _values(time="25:02:31"),
        _values(time="21-02-31"),
        _values(**{"sc-status": "OK"}),
        _values(**{"c-ip": "-"}),
        _values(**{"cs-method": "-"}),
        _values(**{"cs-uri-stem": "e/no-slash.mp3"}),
    ],
)
def test_malformed_cloudfront_lines(values: dict[str, str]) -> None:
    assert CloudFrontParser().parse(_cloudfront(values)) is None


def test_short_and_foreign_cloudfront_lines() -> None:
    parser = CloudFrontParser()
    assert parser.parse("2026-12-04\t21:02:31\tLAX1") is None
    assert (
        parser.parse('203.0.113.7 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 1') is None
    )
    # A line with fewer trailing fields than the header names still reads (they are absent).
    short = _cloudfront(_values()).split("\t")[:20]
    line = parser.parse("\t".join(short))
    assert line is not None and line.bytes_sent == 1049012
