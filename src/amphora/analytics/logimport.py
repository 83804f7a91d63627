"""Access-log import: a show's numbers from the logs of a CDN or web server of its own.

Each line of the log that asked for one of the show's episode files becomes a ``hits`` row, as
if the request had come to us (source ``log:combined`` or ``log:cloudfront``), and audience
processing counts it like any other. A line names an episode by its path:

- ours, ``/e/<slug or former slug>/<episode id>/<media id>.<ext>`` (every file the episode
  ever had: an old feed still points at a replaced one);
- for a show moved here, the path of the enclosure URL it had at the old host (the host is
  ignored: the log may be the old host's or its CDN's). Tracking prefixes in front of it
  (``/redirect.mp3/<host>/<path>``, ``op3.dev/e/<url>``) are seen through as well.

Lines are matched against a map of these paths built once per import. Lines of other shows
are ``unmatched``, lines that are no log line ``malformed``; both are skipped. Every hit gets a
``dedupe_key`` derived from the show, the line's text and the how-manieth identical line of the
file it is, so importing a file again (or gzipped, or through the other door) adds nothing.

The work is streamed: lines are read and turned into rows in a worker thread, a batch at a
time, and written in short write transactions of their own (``ROWS_PER_WRITE`` rows, about a
tenth of a second), so a huge file never holds the database's write lock for long. This module
takes the :class:`~amphora.kit.db.Database`, not a session, for that reason (the CLI and the
API share it). A failure half-way (a broken upload) leaves the hits written so far; importing
the file again completes it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.analytics.geo import GeoIP
from amphora.analytics.logformats import FORMATS, LineParser, parser_for
from amphora.delivery.hits import hit_row
from amphora.kit.db import Database
from amphora.kit.errors import AmphoraError, PayloadTooLarge
from amphora.models import (
    Episode,
    FeedSlug,
    Hit,
    ImportFile,
    ImportItem,
    LogImport,
    MediaFile,
    Show,
)
from amphora.models.import_file import FileKind

__all__ = [
    "LINES_PER_BATCH",
    "MAX_LINE_BYTES",
    "ROWS_PER_WRITE",
    "BadCompression",
    "NotALog",
    "UnknownLogFormat",
    "enclosure_targets",
    "file_lines",
    "import_log",
    "list_log_imports",
    "stream_lines",
]

LINES_PER_BATCH = 10_000  # lines parsed per hop to the worker thread
ROWS_PER_WRITE = 10_000  # rows per write transaction: ~0.1 s of write lock on SQLite
MAX_LINE_BYTES = 64 * 1024  # longer "lines" are not log lines (and are not buffered whole)
CHUNK_BYTES = 1024 * 1024
SEEN_MAX = 500_000  # identical-line counters kept (see _Reader.dedupe_key)
MEMO_MAX = 100_000  # time prefixes of dedupe keys remembered
GZIP_MAGIC = b"\x1f\x8b"

Target = tuple[uuid.UUID, uuid.UUID | None]  # episode id, media id (None: not ours)


class UnknownLogFormat(AmphoraError):
    status_code = 422
    code = "unknown_log_format"
    message = f"The log format must be one of: {', '.join(FORMATS)}."


class NotALog(AmphoraError):
    status_code = 422
    code = "not_a_log"
    message = "No line of this file is a log line of that format."


class BadCompression(AmphoraError):
    status_code = 422
    code = "bad_gzip"
    message = "The file starts like gzip but does not decompress."


# --- reading lines -------------------------------------------------------------------------------

# Stands for a line longer than MAX_LINE_BYTES: parses as nothing, so it counts as malformed.
_OVERLONG = b"\x00"


class _Lines:
    """Bytes in, lines out (without their line ends); gzip (one member or several) is
    recognised by its first bytes and decompressed on the way."""

    def __init__(self) -> None:
        self._head = b""
        self._inflate: Any = None
        self._plain: bool | None = None
        self._rest = b""
        self._skipping = False  # inside an overlong line: drop bytes until its end
        self._in_member = False  # gzip: inside a member (its end not seen yet)

    @property
    def gzipped(self) -> bool:
        return self._plain is False

    def feed(self, data: bytes) -> list[bytes]:
        if self._plain is None:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC):
                return []
            data, self._head = self._head, b""
            self._plain = not data.startswith(GZIP_MAGIC)
            if not self._plain:
                self._inflate = zlib.decompressobj(wbits=31)
        if not self._plain:
            data = self._gunzip(data)
        return self._split(data)

    def end(self) -> list[bytes]:
        lines: list[bytes] = []
        if self._plain is None and self._head:  # a one-byte file
            self._plain, self._head, data = True, b"", self._head
            lines = self._split(data)
        elif self._inflate is not None:
            lines = self._split(self._flush())
        rest, self._rest = self._rest, b""
        if rest and not self._skipping:
            lines.append(rest)
        return lines

    def _gunzip(self, data: bytes) -> bytes:
        out = []
        try:
            while data:
                self._in_member = True
                out.append(self._inflate.decompress(data))
                if not self._inflate.eof:
                    break
                # Concatenated members (`cat a.gz b.gz`) are one stream.
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
                self._in_member = False
        except zlib.error as exc:
            raise BadCompression(details=str(exc)) from exc
        return b"".join(out)

    def _flush(self) -> bytes:
        try:
            tail = self._inflate.flush()
        except zlib.error as exc:
            raise BadCompression(details=str(exc)) from exc
        if self._in_member and not self._inflate.eof:
            raise BadCompression("The gzip stream is cut short.")
        return bytes(tail)

    def _split(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        lines = data.split(b"\n")
        lines[0] = self._rest + lines[0]
        self._rest = lines.pop()
        if self._skipping and lines:
            lines.pop(0)  # the end of the overlong line
            self._skipping = False
        if len(self._rest) > MAX_LINE_BYTES:
            # No end in sight: count it once, as malformed, and drop it as it comes.
            if not self._skipping:
                lines.append(_OVERLONG)
            self._rest, self._skipping = b"", True
        return [_OVERLONG if len(line) > MAX_LINE_BYTES else line for line in lines]


def file_lines(path: Path) -> Iterator[bytes]:
    """The lines of a log file, gzipped or not (blocking reads: iterate in a worker thread,
    as :func:`import_log` does)."""
    reader = _Lines()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            yield from reader.feed(chunk)
    yield from reader.end()


async def stream_lines(
    chunks: AsyncIterable[bytes], *, limit: int | None = None
) -> AsyncIterator[bytes]:
    """The lines of a log arriving in chunks (a request body), gzipped or not; more than
    ``limit`` bytes (as sent) raise :class:`~amphora.kit.errors.PayloadTooLarge`."""
    reader = _Lines()
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if limit is not None and received > limit:
            raise PayloadTooLarge(f"Log files over {limit} bytes are not accepted.")
        if reader.gzipped:  # inflating is real work: off the event loop
            lines = await anyio.to_thread.run_sync(reader.feed, chunk)
        else:
            lines = reader.feed(chunk)
        for line in lines:
            yield line
    for line in reader.end():
        yield line


# --- matching ------------------------------------------------------------------------------------

# A path segment that is a host name (a tracking prefix's next hop): labels, a letters-only TLD.
_HOST = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?::\d+)?")


def _paths_of(url: str) -> tuple[str | None, list[str]]:
    """The decoded path of an enclosure URL, and the paths after each host named inside it."""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None, []
    if not path.startswith("/"):
        return None, []
    segments = path.split("/")
    chained = [
        unquote("/" + "/".join(segments[i + 1 :]))
        for i in range(1, len(segments) - 1)
        if _HOST.fullmatch(segments[i])
    ]
    return unquote(path), [p for p in chained if p != "/"]


async def enclosure_targets(session: AsyncSession, *, show_id: uuid.UUID) -> dict[str, Target]:
    """Every path a request for one of the show's episode files may have had, mapped to the
    episode and (where it is ours) the media file. Deleted episodes are left out, as the
    enclosure route leaves them out."""
    targets: dict[str, Target] = {}
    slug = await session.scalar(select(Show.slug).where(Show.id == show_id))
    if slug is None:
        return targets
    slugs = [slug, *await session.scalars(select(FeedSlug.slug).where(FeedSlug.show_id == show_id))]
    live = [Episode.show_id == show_id, Episode.deleted_at.is_(None)]
    files: dict[uuid.UUID, list[tuple[uuid.UUID, str | None]]] = {}
    media = await session.execute(
        select(MediaFile.id, MediaFile.episode_id, MediaFile.extension, MediaFile.original_filename)
        .join(Episode, Episode.id == MediaFile.episode_id)
        .where(MediaFile.show_id == show_id, *live)
        .order_by(MediaFile.created_at, MediaFile.id)
    )
    for file_id, owner, extension, filename in media:
        if owner is None:
            continue  # (the join leaves none of these)
        files.setdefault(owner, []).append((file_id, filename))
        for name in slugs:
            targets[f"/e/{name}/{owner}/{file_id}.{extension}"] = (owner, file_id)

    # Shows moved here: the old host's enclosure URLs (every one an import ever brought over
    # for the episode, and the one kept when media was not mirrored).
    current: dict[uuid.UUID, uuid.UUID | None] = {}
    urls: list[tuple[uuid.UUID, str]] = []
    for episode_id, episode_media, remote in await session.execute(
        select(Episode.id, Episode.media_id, Episode.remote_media).where(*live).order_by(Episode.id)
    ):
        current[episode_id] = episode_media
        if isinstance(remote, dict) and isinstance(remote.get("url"), str):
            urls.append((episode_id, remote["url"]))
    imported = await session.execute(
        select(ImportItem.episode_id, ImportFile.url)
        .join(ImportItem, ImportItem.id == ImportFile.item_id)
        .join(Episode, Episode.id == ImportItem.episode_id)
        .where(ImportFile.kind == FileKind.media, *live)
        .order_by(ImportFile.id)
    )
    urls += [(episode_id, url) for episode_id, url in imported if episode_id is not None]
    chained: dict[str, Target | None] = {}
    for episode_id, url in urls:
        path, hops = _paths_of(url)
        if path is None:
            continue
        name = path.rsplit("/", 1)[-1]
        media_id = next(
            (
                m
                for m, filename in files.get(episode_id, ())
                if filename and unquote(filename) == name
            ),
            current.get(episode_id),
        )
        target = (episode_id, media_id)
        targets.setdefault(path, target)
        for hop in hops:
            # The same tail under two episodes names neither.
            chained[hop] = target if chained.get(hop, target) == target else None
    for hop, found in chained.items():
        if found is not None:
            targets.setdefault(hop, found)
    return targets


# --- lines to rows -------------------------------------------------------------------------------


@dataclass
class Counts:
    lines: int = 0  # log lines read (blank lines and format headers are not lines)
    imported: int = 0
    duplicates: int = 0
    unmatched: int = 0
    malformed: int = 0
    matched: int = 0


class _Reader:
    """Turns lines into ``hits`` rows; runs in a worker thread, one batch at a time."""

    def __init__(
        self,
        *,
        show_id: uuid.UUID,
        fmt: str,
        targets: dict[str, Target],
        key: bytes,
        geo: GeoIP | None,
    ) -> None:
        self.parser: LineParser = parser_for(fmt)
        self.source = f"log:{fmt}"
        self.show_id = show_id
        self.targets = targets
        self.key = key
        self.geo = geo
        self.counts = Counts()
        self._prefix = hashlib.sha256(b"amphora.log-import.v1\n" + show_id.bytes + b"\n")
        self._seen: dict[bytes, int] = {}
        self._times: dict[datetime, str] = {}

    def dedupe_key(self, line: bytes, at: datetime) -> str:
        """32 hex characters: the line's time (8, seconds since 1970) and 24 of sha256 over
        (show, line text, occurrence of that exact text in this file so far).

        The time in front makes the unique index grow at its end, as the other indexes of
        ``hits`` do: with keys all over the index, inserting into a table of a million rows
        ran at half the speed. Occurrence counters are kept for the last ``SEEN_MAX``
        distinct matched lines: identical lines lie within the same second of a log, never
        that far apart, and the count stays a function of the file alone (a re-import gives
        the same keys)."""
        hasher = self._prefix.copy()
        hasher.update(line)
        digest = hasher.digest()
        seen = self._seen
        occurrence = seen.get(digest, 0)
        if len(seen) >= SEEN_MAX and not occurrence:
            seen.clear()
        seen[digest] = occurrence + 1
        if occurrence:
            digest = hashlib.sha256(digest + b"#%d" % occurrence).digest()
        prefix = self._times.get(at)
        if prefix is None:
            if len(self._times) >= MEMO_MAX:
                self._times.clear()
            seconds = min(max(int(at.timestamp()), 0), 0xFFFFFFFF)
            prefix = self._times[at] = f"{seconds:08x}"
        return prefix + digest.hex()[:24]

    def rows(self, lines: Iterable[bytes]) -> tuple[list[dict[str, Any]], int]:
        """Rows for the matched lines of ``lines``, and how many lines were taken (0: the
        input is over)."""
        out: list[dict[str, Any]] = []
        parse = self.parser.parse
        directive = self.parser.directive
        targets = self.targets
        dedupe_key = self.dedupe_key
        key, show_id, source, geo = self.key, self.show_id, self.source, self.geo
        taken = read = malformed = unmatched = 0
        try:
            for raw in lines:
                taken += 1
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if not raw:
                    continue
                text = raw.decode("utf-8", "replace")
                if text[0] == "#" and directive(text):
                    continue
                read += 1
                line = parse(text)
                if line is None:
                    malformed += 1
                    continue
                target = targets.get(line.path)
                if target is None:
                    unmatched += 1
                    continue
                out.append(
                    hit_row(
                        key=key,
                        at=line.at,
                        show_id=show_id,
                        episode_id=target[0],
                        media_id=target[1],
                        subscriber_id=None,
                        method=line.method,
                        status=line.status,
                        range_header=None,
                        bytes_sent=line.bytes_sent,
                        client_address=line.client_address,
                        user_agent=line.user_agent,
                        referer=line.referer,
                        session_id=None,
                        source=source,
                        geo=geo,
                        dedupe_key=dedupe_key(raw, line.at),
                    )
                )
        finally:
            counts = self.counts
            counts.lines += read
            counts.malformed += malformed
            counts.unmatched += unmatched
            counts.matched += len(out)
        return out, taken


# --- writing -------------------------------------------------------------------------------------

_TABLE = Hit.metadata.tables[Hit.__tablename__]
_COLUMNS = [column for column in _TABLE.columns if column.name != "id"]
_INSERTS = {
    "sqlite": sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"]),
    "postgresql": postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["dedupe_key"]),
}

# Columns a log line never fills: left out of the SQLite statement (they default to NULL).
_NEVER_SET = frozenset({"subscriber_id", "range", "session_id"})
ROWS_PER_STATEMENT = 1000  # SQLite: rows in one multi-row INSERT (14 parameters each)


class _Writer:
    """Writes batches of rows, each in a write transaction of its own; returns how many rows
    were new (the others' dedupe keys were there already).

    On SQLite the rows go in as multi-row ``INSERT … VALUES (…), (…), …`` statements of
    ``ROWS_PER_STATEMENT`` rows, run by the driver directly, the values converted beforehand
    by the columns' own SQLAlchemy bind processors (so they are stored exactly as an ORM insert
    stores them), each distinct value once. Measured: the statement layer's per-row work cost
    as much as SQLite's own, and a statement per thousand rows is a quarter quicker than the
    driver's executemany. Elsewhere (PostgreSQL) it is a Core insert.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.engine.dialect
        self.direct = self.dialect.name == "sqlite"
        self._converters: list[tuple[int, Any]] = []
        if self.direct:
            compiled = _INSERTS["sqlite"].compile(
                dialect=self.dialect,
                column_keys=[c.name for c in _COLUMNS if c.name not in _NEVER_SET],
            )
            names = list(compiled.positiontup or ())
            # "INSERT INTO hits (…) VALUES (?, …) ON CONFLICT …": the row part repeats.
            sql = str(compiled)
            head, _, rest = sql.partition(" VALUES ")
            row, _, tail = rest.partition(") ")
            self._parts = (f"{head} VALUES ", f"{row})", f" {tail}")
            self._pick = itemgetter(*names)
            self._width = len(names)
            self._rows_per_statement = min(
                ROWS_PER_STATEMENT, self.dialect.insertmanyvalues_max_parameters // len(names)
            )
            self._full = self._sql(self._rows_per_statement)
            for position, name in enumerate(names):
                column_type = _TABLE.c[name].type.dialect_impl(self.dialect)
                process = column_type.bind_processor(self.dialect)
                if process is not None:
                    self._converters.append((position, process))

    def _sql(self, rows: int) -> str:
        head, row, tail = self._parts
        return head + ", ".join([row] * rows) + tail

    def prepare(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Make rows ready for :meth:`write` (in the worker thread: it is CPU work). On
        SQLite: the parameters of each statement, as one flat tuple."""
        if not self.direct or not rows:
            return rows
        width = self._width
        flat = list(itertools.chain.from_iterable(map(self._pick, rows)))
        for position, process in self._converters:
            # Few distinct values (ids, seconds): each converted once.
            values = flat[position::width]
            converted = {value: process(value) for value in set(values)}
            flat[position::width] = map(converted.__getitem__, values)
        step = self._rows_per_statement * width
        return [tuple(flat[start : start + step]) for start in range(0, len(flat), step)]

    async def write(self, rows: list[Any]) -> int:
        async with self.db.session(write=True) as session:
            if self.direct:
                connection = await session.connection()
                written = 0
                for params in rows:
                    count = len(params) // self._width
                    sql = self._full if count == self._rows_per_statement else self._sql(count)
                    direct = await connection.exec_driver_sql(sql, params)
                    written += int(direct.rowcount)  # changed rows: 0 for a duplicate
                return written
            statement = _INSERTS[self.dialect.name]
            if self.dialect.supports_sane_multi_rowcount:
                result = await session.execute(statement, rows)
                return int(result.rowcount)  # type: ignore[attr-defined]
            # Drivers that cannot tell (asyncpg's executemany): the new rows' ids say it.
            returned = await session.execute(statement.returning(_TABLE.c.id), rows)
            return len(returned.all())


# --- the import ----------------------------------------------------------------------------------


async def import_log(
    db: Database,
    *,
    show_id: uuid.UUID,
    user_id: uuid.UUID | None,
    fmt: str,
    lines: Iterable[bytes] | AsyncIterable[bytes],
    file_name: str | None,
    key: bytes,
    geo: GeoIP | None,
) -> LogImport:
    """Import one log file's ``lines`` (bytes, without line ends: see :func:`file_lines` and
    :func:`stream_lines`) for the show, and record the import with its counts.

    ``key`` hashes client addresses as the delivery log does (``client_hash_key`` of the
    secret key); ``geo`` locates them. Raises :class:`NotALog` (nothing recorded) when there
    were lines and none of them parsed: the wrong format, or no log at all. Hits written
    before a failure (a broken upload) stay; importing the file again completes it.
    """
    if fmt not in FORMATS:
        raise UnknownLogFormat()
    async with db.session(write=False) as session:
        targets = await enclosure_targets(session, show_id=show_id)
    reader = _Reader(show_id=show_id, fmt=fmt, targets=targets, key=key, geo=geo)
    writer = _Writer(db)
    counts = reader.counts
    # One after the other: reading the next lines (a worker thread) while the last ones are
    # written was measured no quicker, the threads taking turns at the interpreter lock.
    async for rows in _row_batches(reader, writer, lines):
        counts.imported += await writer.write(rows)
    if counts.lines and counts.malformed == counts.lines:
        raise NotALog(
            f"None of the {counts.lines} lines is a {fmt} log line: is it the right format?"
        )
    counts.duplicates = counts.matched - counts.imported
    async with db.session() as session:
        record = LogImport(
            show_id=show_id,
            user_id=user_id,
            format=fmt,
            file_name=file_name[:255] if file_name else None,
            lines=counts.lines,
            imported=counts.imported,
            duplicates=counts.duplicates,
            unmatched=counts.unmatched,
            malformed=counts.malformed,
        )
        session.add(record)
        await session.flush()
    return record


async def _row_batches(
    reader: _Reader, writer: _Writer, lines: Iterable[bytes] | AsyncIterable[bytes]
) -> AsyncIterator[list[Any]]:
    """Rows ready to write, ``ROWS_PER_WRITE`` at a time (the last batch: what is left)."""
    pending: list[Any] = []

    def convert(batch: Iterable[bytes]) -> tuple[list[Any], int]:
        rows, taken = reader.rows(batch)
        return writer.prepare(rows), taken

    if isinstance(lines, AsyncIterable):
        async for batch in _batches(lines, LINES_PER_BATCH):
            rows, _ = await anyio.to_thread.run_sync(convert, batch)
            pending += rows
            while len(pending) >= ROWS_PER_WRITE:
                yield pending[:ROWS_PER_WRITE]
                del pending[:ROWS_PER_WRITE]
    else:
        # Reading (a file, gunzipping) happens in the worker thread too.
        source = iter(lines)
        while True:
            rows, taken = await anyio.to_thread.run_sync(
                convert, itertools.islice(source, LINES_PER_BATCH)
            )
            pending += rows
            while len(pending) >= ROWS_PER_WRITE:
                yield pending[:ROWS_PER_WRITE]
                del pending[:ROWS_PER_WRITE]
            if not taken:
                break
    if pending:
        yield pending


async def _batches(lines: AsyncIterable[bytes], size: int) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def list_log_imports(
    session: AsyncSession, *, show_id: uuid.UUID, offset: int = 0, limit: int = 50
) -> list[LogImport]:
    """The show's log imports, newest first."""
    rows = await session.scalars(
        select(LogImport)
        .where(LogImport.show_id == show_id)
        .order_by(LogImport.created_at.desc(), LogImport.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows)
