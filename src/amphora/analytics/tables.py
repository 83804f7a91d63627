"""Insight answers as CSV: every series of the insights API is also a table for
spreadsheets (``Accept: text/csv``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Request

CSV = "text/csv"
CSV_TYPE = f"{CSV}; charset=utf-8"
JSON = "application/json"
CSV_RESPONSE: dict[str, Any] = {CSV: {"schema": {"type": "string"}}}


def wants_csv(request: Request) -> bool:
    """``Accept`` names CSV before (or without) JSON."""
    accept = request.headers.get("accept", "")
    return CSV in accept and JSON not in accept.split(CSV)[0]


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue().encode()
