"""Who downloaded: the OPAWG user-agents-v2 data set, loaded from a directory and matched.

The data set (github.com/opawg/user-agents-v2) is six JSON files of regular expressions,
``{"entries": [{"name", "pattern", "examples", ...}]}``. Its README fixes the algorithm, so that
everyone counting podcasts gets the same answer for the same User-Agent:

- remove newlines; try ``bots``, then ``apps``, then ``libraries``, then ``browsers``, entries
  in file order; the first entry whose ``pattern`` matches (a search, not a full match) wins,
  and its file is its kind;
- when the kind is not ``bot``, ``devices`` is matched the same way, separately, on the same
  User-Agent (a device has a ``category``: ``mobile``, ``smart_speaker``, …);
- for browser traffic only, ``referrers`` is matched against the ``Referer`` header (web players
  cannot set their own User-Agent, so the page that embeds them names them).

What counts as a bot (STANDARDS §5): a ``bots`` match (the Apple Watch ``atc/`` and
``(null) watchOS/`` requests included: they duplicate the phone's download), a missing
User-Agent, and ``libraries`` entries whose ``category`` is ``bot`` (server-side fetchers).

Operating system: v2 dropped the ``os`` attribute of the original OPAWG list (no file has one);
``Agent.os`` is read from an ``os`` field of the matched entry, else of the device entry, so it
is filled if the data ever carries one again, and stays ``None`` with today's data rather than
being guessed from hand-written rules.

``amphora analytics update-user-agents`` installs or refreshes the files
(:func:`install_user_agents`); :func:`load_user_agents` is what callers use on every run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
import secrets
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from amphora.kit.errors import AmphoraError
from amphora.kit.http import FetchError, fetch
from amphora.settings import Settings

MATCH_ORDER: tuple[tuple[str, str], ...] = (
    ("bots", "bot"),
    ("apps", "app"),
    ("libraries", "library"),
    ("browsers", "browser"),
)
FILES: tuple[str, ...] = ("bots", "apps", "libraries", "browsers", "devices", "referrers")
LICENSE = "LICENSE"
KINDS = frozenset({"bot", "app", "library", "browser", "unknown", "missing"})

CACHE_SIZE = 100_000
# A longer User-Agent is classified but not cached: 100k cached strings must stay small.
MAX_CACHED_LENGTH = 1024
MAX_FILE_BYTES = 16 * 1024**2
MAX_LICENSE_BYTES = 256 * 1024
_NEWLINES = str.maketrans("", "", "\r\n")


class UserAgentDataError(AmphoraError):
    """The user-agent data set is missing, unreadable or invalid."""

    status_code = 422
    code = "user_agent_data_invalid"
    message = "The user-agent data set is missing or invalid."


@dataclass(frozen=True, slots=True)
class Agent:
    """What a User-Agent is, by the OPAWG data.

    ``kind``: ``bot``, ``app``, ``library``, ``browser`` (the file that matched), ``unknown``
    (nothing matched) or ``missing`` (no User-Agent, or only blanks and newlines). ``name`` and
    ``category`` come from the matched entry; ``device`` and ``device_category`` from the first
    ``devices`` entry matching the same User-Agent (not looked up for bots). ``os`` is ``None``
    with the v2 data, which has no ``os`` field (see the module docstring).
    """

    kind: str
    name: str | None = None
    category: str | None = None
    device: str | None = None
    os: str | None = None
    device_category: str | None = None

    @property
    def excluded(self) -> bool:
        """Not a listener: never counted as a download (STANDARDS §5)."""
        if self.kind in {"bot", "missing"}:
            return True
        return self.kind == "library" and self.category == "bot"


MISSING = Agent(kind="missing")


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a pattern file, compiled, with what the prefilter knows about it."""

    name: str
    regex: re.Pattern[str]
    category: str | None = None
    os: str | None = None
    # Every match starts at the beginning of the text with one of these characters.
    first_chars: frozenset[str] | None = None
    # Every match contains at least one of these strings.
    needles: tuple[str, ...] | None = None


# --- prefilter ----------------------------------------------------------------------------------
#
# Trying ~900 patterns one by one costs ~900 regex calls per User-Agent. Most patterns are
# anchored literals (``^Overcast/``) or contain one (``AhrefsBot/``), so two facts proven from
# the parsed pattern let most entries be skipped without running them: the characters a match
# must start with, when it is anchored at the start, and literal strings one of which every
# match contains. An entry is only skipped when it provably cannot match, so the result is
# exactly first-match-in-file-order (tests compare it with the plain loop). The facts come from
# the stdlib's own regex parser (``re._parser``, private): if it is missing, or a pattern uses
# anything not handled here, that entry is simply always tried. Combining patterns into one
# alternation was measured too, and is slower than the plain loop: it loses the literal-prefix
# search ``re`` does for a single pattern.

try:
    _parser: Any = importlib.import_module("re._parser")
    _const: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - a Python without the module: no prefilter
    _parser = _const = None

_MAX_RANGE = 128


def _first_chars(items: list[Any]) -> set[str] | None:
    """Characters a non-empty match of ``items`` must start with (``None``: unknown)."""
    if not items:
        return None
    op, av = items[0]
    if op is _const.LITERAL:
        return {chr(av)}
    if op is _const.IN:
        found: set[str] = set()
        for kind, value in av:
            if kind is _const.LITERAL:
                found.add(chr(value))
            elif kind is _const.RANGE and value[1] - value[0] < _MAX_RANGE:
                found.update(chr(code) for code in range(value[0], value[1] + 1))
            else:  # negated sets, categories (\d), big ranges
                return None
        return found
    if op is _const.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _first_chars(list(sub.data) + items[1:])
    if op is _const.BRANCH:
        return _union(_first_chars(list(branch.data) + items[1:]) for branch in av[1])
    if op in (_const.MAX_REPEAT, _const.MIN_REPEAT) and av[0] >= 1:
        return _first_chars(list(av[2].data))
    return None


def _anchored(items: list[Any]) -> set[str] | None:
    """First characters of the text when every match is anchored at its start (``^``)."""
    if not items:
        return None
    op, av = items[0]
    if op is _const.AT and av is _const.AT_BEGINNING:
        return _first_chars(items[1:])
    if op is _const.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _anchored(list(sub.data) + items[1:])
    if op is _const.BRANCH:
        return _union(_anchored(list(branch.data) + items[1:]) for branch in av[1])
    return None


def _union(sets: Iterable[set[str] | None]) -> set[str] | None:
    found: set[str] = set()
    for each in sets:
        if each is None:
            return None
        found |= each
    return found


def _needles(items: list[Any]) -> set[str] | None:
    """Strings one of which every match of ``items`` contains (``None``: none known)."""
    candidates: list[set[str]] = []
    run: list[str] = []
    for op, av in [*items, (None, None)]:
        if op is _const.LITERAL:
            run.append(chr(av))
            continue
        if run:  # consecutive literals of a sequence: all of them are in every match
            candidates.append({"".join(run)})
            run = []
        found: set[str] | None = None
        if op is _const.SUBPATTERN and not (av[1] or av[2]):
            found = _needles(list(av[3].data))
        elif op is _const.BRANCH:
            found = _union(_needles(list(branch.data)) for branch in av[1])
        elif op in (_const.MAX_REPEAT, _const.MIN_REPEAT) and av[0] >= 1:
            found = _needles(list(av[2].data))
        if found:
            candidates.append(found)
    if not candidates:
        return None
    # The most selective: the longest shortest string, then the fewest strings.
    return max(candidates, key=lambda found: (min(map(len, found)), -len(found)))


def _analyse(pattern: str) -> tuple[frozenset[str] | None, tuple[str, ...] | None]:
    if _parser is None:
        return None, None
    try:
        tree = _parser.parse(pattern, re.ASCII)
        if tree.state.flags & ~(re.ASCII | re.UNICODE):  # inline (?i), (?m), …: no prefilter
            return None, None
        items = list(tree.data)
        first, needles = _anchored(items), _needles(items)
    except Exception:  # the prefilter is an optimisation, never a reason to fail
        return None, None
    return (
        frozenset(first) if first else None,
        tuple(sorted(needles)) if needles else None,
    )


class _Matcher:
    """The first entry, in file order, whose pattern is found in a text (``re.search``)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = tuple(entries)
        self._unanchored = tuple(e for e in self.entries if e.first_chars is None)
        starts = set().union(*(e.first_chars for e in self.entries if e.first_chars))
        # Per first character of the text: the entries worth trying, still in file order.
        self._by_start = {
            char: tuple(e for e in self.entries if e.first_chars is None or char in e.first_chars)
            for char in starts
        }

    def first(self, text: str) -> Entry | None:
        for entry in self._by_start.get(text[:1], self._unanchored):
            needles = entry.needles
            if needles is not None:
                for needle in needles:
                    if needle in text:
                        break
                else:
                    continue
            if entry.regex.search(text) is not None:
                return entry
        return None

    def first_plain(self, text: str) -> Entry | None:
        """The same answer without the prefilter (the reference the tests compare with)."""
        for entry in self.entries:
            if entry.regex.search(text) is not None:
                return entry
        return None


def _strip_newlines(text: str) -> str:
    return text.translate(_NEWLINES)


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise UserAgentDataError(f"{where}: {key!r} must be a string.")


def _parse_file(name: str, body: bytes) -> tuple[Entry, ...]:
    filename = f"{name}.json"
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserAgentDataError(f"{filename} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise UserAgentDataError(f"{filename} has no 'entries' list.")
    entries: list[Entry] = []
    for index, raw in enumerate(data["entries"]):
        where = f"{filename} entry {index}"
        if not isinstance(raw, dict):
            raise UserAgentDataError(f"{where} is not an object.")
        entry_name, pattern = raw.get("name"), raw.get("pattern")
        if not isinstance(entry_name, str) or not entry_name.strip():
            raise UserAgentDataError(f"{where} has no name.")
        where = f"{filename} entry {index} ({entry_name})"
        if not isinstance(pattern, str) or not pattern.strip():
            raise UserAgentDataError(f"{where} has no pattern.")
        try:
            # ASCII: the patterns are written for JavaScript, where \d and \w are ASCII only.
            regex = re.compile(pattern, re.ASCII)
        except re.error as exc:
            raise UserAgentDataError(
                f"{where}: the pattern {pattern!r} does not compile: {exc}.",
                details={"file": filename, "entry": entry_name, "pattern": pattern},
            ) from exc
        first_chars, needles = _analyse(pattern)
        entries.append(
            Entry(
                name=entry_name,
                regex=regex,
                category=_optional_str(raw, "category", where),
                os=_optional_str(raw, "os", where),
                first_chars=first_chars,
                needles=needles,
            )
        )
    return tuple(entries)


def _version(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        body = files[name]
        digest.update(f"{name}.json\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()[:12]


class UserAgents:
    """The loaded data set: :meth:`classify` a User-Agent, name the :meth:`referrer`."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        """Parse and compile the six files' contents (keyed by name without ``.json``)."""
        missing = [f"{name}.json" for name in FILES if name not in files]
        if missing:
            raise UserAgentDataError(f"The user-agent data lacks {', '.join(missing)}.")
        parsed = {name: _parse_file(name, files[name]) for name in FILES}
        self.version = _version(files)
        self.counts: dict[str, int] = {name: len(parsed[name]) for name in FILES}
        self._order = tuple((_Matcher(parsed[name]), kind) for name, kind in MATCH_ORDER)
        self._devices = _Matcher(parsed["devices"])
        self._referrers = _Matcher(parsed["referrers"])
        # Per instance (not on the class) so the cache goes with the data it was computed from.
        # lru_cache is safe to call from several threads: at worst a result is computed twice.
        self._cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._classify)

    @classmethod
    def load(cls, directory: Path) -> UserAgents:
        """Read ``<name>.json`` for every file of the data set from ``directory``."""
        if not directory.is_dir():
            raise UserAgentDataError(f"The user-agent data directory {directory} does not exist.")
        files: dict[str, bytes] = {}
        for name in FILES:
            path = directory / f"{name}.json"
            try:
                files[name] = path.read_bytes()
            except FileNotFoundError as exc:
                raise UserAgentDataError(f"{path} is missing.") from exc
            except OSError as exc:
                raise UserAgentDataError(f"{path} could not be read: {exc}.") from exc
        return cls(files)

    def __repr__(self) -> str:
        return f"<UserAgents {self.version} {self.counts}>"

    def classify(self, user_agent: str | None) -> Agent:
        """The agent a User-Agent header names (results are cached per distinct header)."""
        if not user_agent:
            return MISSING
        if len(user_agent) > MAX_CACHED_LENGTH:
            return self._classify(user_agent)
        return self._cached(user_agent)

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()

    def cache_clear(self) -> None:
        self._cached.cache_clear()

    def _classify(self, user_agent: str) -> Agent:
        text = _strip_newlines(user_agent)
        if not text.strip():
            return MISSING
        for matcher, kind in self._order:
            entry = matcher.first(text)
            if entry is None:
                continue
            if kind == "bot":
                return Agent(kind=kind, name=entry.name, category=entry.category, os=entry.os)
            return self._with_device(text, kind, entry)
        return self._with_device(text, "unknown", None)

    def _with_device(self, text: str, kind: str, entry: Entry | None) -> Agent:
        device = self._devices.first(text)
        return Agent(
            kind=kind,
            name=entry.name if entry else None,
            category=entry.category if entry else None,
            device=device.name if device else None,
            os=(entry.os if entry else None) or (device.os if device else None),
            device_category=device.category if device else None,
        )

    def referrer(self, referer: str | None, agent: Agent) -> str | None:
        """The web player or site a browser's ``Referer`` names (``None`` for other agents)."""
        if agent.kind != "browser" or not referer:
            return None
        entry = self._referrers.first(_strip_newlines(referer))
        return entry.name if entry else None


# --- loading once per change --------------------------------------------------------------------

_loaded: dict[Path, tuple[tuple[Any, ...], UserAgents]] = {}
_loaded_lock = threading.Lock()


def _signature(directory: Path) -> tuple[Any, ...]:
    """The newest modification time of the files, with their sizes and inodes, so that a set
    swapped in with older timestamps (a copy that kept them) is noticed as well."""
    stats: list[tuple[str, int, int, int] | tuple[str, None]] = []
    newest = 0
    for name in FILES:
        try:
            stat = (directory / f"{name}.json").stat()
        except OSError:
            stats.append((name, None))
            continue
        stats.append((name, stat.st_mtime_ns, stat.st_size, stat.st_ino))
        newest = max(newest, stat.st_mtime_ns)
    return (newest, tuple(stats))


def load_user_agents(directory: Path) -> UserAgents | None:
    """The data set in ``directory``, or ``None`` when it is not installed.

    Cheap to call on every run: the loaded instance (and its classification cache) is kept
    until a file in the directory changes.
    """
    directory = directory.expanduser().absolute()
    if not directory.is_dir():
        return None
    with _loaded_lock:
        signature = _signature(directory)
        cached = _loaded.get(directory)
        if cached is not None and cached[0] == signature:
            return cached[1]
        agents = UserAgents.load(directory)
        _loaded[directory] = (signature, agents)
        return agents


# --- installing and updating --------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _license_urls(base: str) -> list[str]:
    urls = [base + LICENSE]
    # The upstream repository keeps the JSON files in src/ and its LICENSE at the top.
    if httpx.URL(base).path.rstrip("/").endswith("/src"):
        urls.append(str(httpx.URL(base).join("../" + LICENSE)))
    return urls


async def _download(base: str, settings: Settings) -> dict[str, bytes]:
    if not base.endswith("/"):
        base += "/"
    files: dict[str, bytes] = {}
    for name in FILES:
        fetched = await fetch(f"{base}{name}.json", settings=settings, max_bytes=MAX_FILE_BYTES)
        files[f"{name}.json"] = fetched.body
    for url in _license_urls(base):
        try:
            fetched = await fetch(url, settings=settings, max_bytes=MAX_LICENSE_BYTES)
        except FetchError:  # the licence is optional: the data works without it
            continue
        files[LICENSE] = fetched.body
        break
    return files


def _read_local(source: str) -> dict[str, bytes]:
    directory = Path(source).expanduser()
    if not directory.is_dir():
        raise UserAgentDataError(f"{directory} is not a directory (nor an http(s) URL).")
    files: dict[str, bytes] = {}
    for name in FILES:
        path = directory / f"{name}.json"
        if not path.is_file():
            raise UserAgentDataError(f"{path} is missing.")
        files[path.name] = path.read_bytes()
    candidates = [directory / LICENSE]
    if directory.name == "src":  # a checkout of the upstream repository
        candidates.append(directory.parent / LICENSE)
    for path in candidates:
        if path.is_file():
            files[LICENSE] = path.read_bytes()
            break
    return files


def _put_in_place(target: Path, files: Mapping[str, bytes]) -> None:
    """Write into a sibling directory, check it loads, then swap it in for ``target``."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    staging = parent / f".{target.name}.new-{token}"
    old = parent / f".{target.name}.old-{token}"
    staging.mkdir()
    try:
        for filename, body in files.items():
            (staging / filename).write_bytes(body)
        UserAgents.load(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    had_old = target.exists()
    if had_old:
        target.rename(old)
    try:
        staging.rename(target)
    except BaseException:
        if had_old:
            old.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)


async def install_user_agents(settings: Settings, source: str | None = None) -> Path:
    """Install or refresh the data set in ``settings.resolved_user_agents_dir``.

    ``source`` is a local directory or an http(s) URL of a directory (``<name>.json`` is
    appended); by default ``settings.user_agents_url``. Downloads go through the guarded
    fetcher. Nothing is replaced unless the new files load: a failed update keeps the old set.
    """
    origin = source or settings.user_agents_url
    if _is_url(origin):
        files = await _download(origin, settings)
    elif "://" in origin:
        raise UserAgentDataError(f"Only http(s) URLs and local directories work, not {origin}.")
    else:
        files = await anyio.to_thread.run_sync(_read_local, origin)

    def put() -> Path:
        target = settings.resolved_user_agents_dir  # creates the data directory if needed
        _put_in_place(target, files)
        return target

    return await anyio.to_thread.run_sync(put)
