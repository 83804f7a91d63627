"""Reading an Amphora export zip (see ``export.py``) as an import source.

The manifest carries every field exactly as the exporting server stored it, so an export comes
back unchanged: drafts stay drafts, scheduled episodes stay scheduled, premium stays premium,
series and guids are kept. Files are taken from the zip itself (``archive:<member>`` URLs), never
from the network. A zip is untrusted input: the manifest is size-capped and validated, members
are read by name only (nothing is extracted to a path taken from the archive), and each member's
decompressed size is capped while it is copied.
"""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from amphora.episode.schemas import EpisodeFields
from amphora.feed_import.parsed import ParsedFeed, ParsedItem, Problem, RemoteFile, RemoteTranscript
from amphora.kit.clock import ensure_utc
from amphora.kit.errors import AmphoraError
from amphora.settings import Settings
from amphora.show.schemas import ShowFields

ARCHIVE_PREFIX = "archive:"
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 64 * 1024**2
FORMAT, VERSION = "amphora-export", 1
COPY_CHUNK = 1024 * 1024


def archives_dir(settings: Settings) -> Path:
    """Where uploaded export zips wait until their import ends (see ``tasks``)."""
    return settings.resolved_data_dir / "imports" / "archives"


class ArchiveInvalid(AmphoraError):
    status_code = 422
    code = "archive_invalid"
    message = "This is not an Amphora export archive."


def _member(value: dict[str, Any] | None, names: set[str]) -> str | None:
    path = (value or {}).get("path")
    return path if isinstance(path, str) and path in names else None


def _validated(model: type[ShowFields] | type[EpisodeFields], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ArchiveInvalid(
            "The archive's manifest has values this server does not accept.",
            details=exc.errors(include_url=False, include_context=False),
        ) from exc


def _item(entry: dict[str, Any], names: set[str], series: dict[str, str]) -> ParsedItem:
    fields = dict(entry.get("fields") or {})
    guid = fields.pop("guid", None)
    if not isinstance(guid, str) or not guid:
        raise ArchiveInvalid("An episode in the manifest has no guid.")
    publish_at = fields.pop("publish_at", None)
    series_id = fields.pop("series_id", None)
    _validated(EpisodeFields, fields)
    media = entry.get("media") or {}
    enclosure = None
    if (path := _member(media, names)) is not None:
        enclosure = RemoteFile(
            url=ARCHIVE_PREFIX + path,
            type=media.get("content_type"),
            length=media.get("size"),
            filename=media.get("original_filename"),
        )
    elif isinstance(remote := entry.get("remote_media"), dict) and remote.get("url"):
        enclosure = RemoteFile(
            url=remote["url"], type=remote.get("type"), length=remote.get("length")
        )
    artwork = _member(entry.get("artwork"), names)
    chapters = _member(entry.get("chapters"), names)
    transcripts = [
        RemoteTranscript(
            url=ARCHIVE_PREFIX + path,
            type=str(t.get("content_type") or "text/plain"),
            language=t.get("language"),
            captions=bool(t.get("captions")),
        )
        for t in entry.get("transcripts") or []
        if (path := _member(t, names)) is not None
    ]
    return ParsedItem(
        guid=guid,
        fields=fields,
        pub_date=ensure_utc(datetime.fromisoformat(publish_at)) if publish_at else None,
        enclosure=enclosure,
        image_url=ARCHIVE_PREFIX + artwork if artwork else None,
        transcripts=transcripts,
        chapters=RemoteFile(url=ARCHIVE_PREFIX + chapters) if chapters else None,
        draft=publish_at is None,
        series=series.get(str(series_id)) if series_id else None,
    )


def read_archive(path: str | Path) -> ParsedFeed:
    """The archive's show and episodes as an import source (blocking: run in a thread)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {info.filename for info in archive.infolist() if not info.is_dir()}
            if MANIFEST not in names:
                raise ArchiveInvalid("The zip has no manifest.json: not an Amphora export.")
            if archive.getinfo(MANIFEST).file_size > MANIFEST_MAX_BYTES:
                raise ArchiveInvalid("The manifest is too large.")
            manifest = json.loads(archive.read(MANIFEST))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, ArchiveInvalid):
            raise
        raise ArchiveInvalid(f"The archive cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveInvalid
    if manifest.get("version") != VERSION:
        raise ArchiveInvalid(f"Export format version {manifest.get('version')!r} is not known.")
    show = dict(manifest.get("show") or {})
    slug = show.pop("slug", None)
    podcast_guid = show.pop("podcast_guid", None)
    show.pop("new_feed_url", None)
    _validated(ShowFields, show)
    series_rows = [s for s in manifest.get("series") or [] if isinstance(s, dict)]
    series = {str(s.get("id")): str(s.get("name")) for s in series_rows}
    problems: list[Problem] = []
    items = []
    for number, entry in enumerate(manifest.get("episodes") or [], 1):
        try:
            items.append(_item(entry, names, series))
        except (ArchiveInvalid, ValueError, TypeError, AttributeError) as exc:
            message = exc.message if isinstance(exc, ArchiveInvalid) else str(exc)
            problems.append(Problem(f"episode #{number}", "manifest", message))
    artwork = _member(manifest.get("artwork"), names)
    return ParsedFeed(
        show=show,
        items=items,
        problems=problems,
        podcast_guid=podcast_guid,
        image_url=ARCHIVE_PREFIX + artwork if artwork else None,
        format="archive",
        slug=slug,
        series=[
            {k: s[k] for k in ("name", "description", "position") if k in s} for s in series_rows
        ],
    )


def copy_member(archive_path: str | Path, member: str, target: Path, max_bytes: int) -> int:
    """Copy one member to ``target`` (blocking), refusing more than ``max_bytes`` decompressed."""
    too_large = ArchiveInvalid(f"{member} is larger than {max_bytes} bytes.")
    try:
        with zipfile.ZipFile(archive_path) as archive:
            info = archive.getinfo(member)
            if info.file_size > max_bytes:
                raise too_large
            written = 0
            with archive.open(info) as source, target.open("wb") as sink:
                while chunk := source.read(COPY_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:  # the directory lied about the size
                        raise too_large
                    sink.write(chunk)
    except KeyError as exc:
        raise ArchiveInvalid(f"The archive has no {member}.") from exc
    except (zipfile.BadZipFile, OSError) as exc:  # a CRC mismatch, a truncated archive
        raise ArchiveInvalid(f"{member} cannot be read from the archive: {exc}") from exc
    return written
