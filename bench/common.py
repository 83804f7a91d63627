"""Shared helpers for the benchmarks: run `amphora serve`, measure it, record results.

Nothing here knows about a particular machine: paths are resolved from this file and from
the running interpreter (run the benchmarks with the project's virtualenv Python).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx
import psutil  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from amphora.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


# --- small utilities ----------------------------------------------------------------------------


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that ``finally`` blocks stop servers and drop databases."""

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def amphora_command() -> list[str]:
    """The `amphora` console script next to the running interpreter (or `python -m amphora`)."""
    script = Path(sys.executable).parent / "amphora"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "amphora"]


def base_env(data_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    """The environment for one server: inherited variables minus any stray ``AMPHORA_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPHORA_")}
    env.update(
        AMPHORA_DATA_DIR=str(data_dir),
        AMPHORA_PORT=str(port),
        AMPHORA_HOST="127.0.0.1",
        AMPHORA_BASE_URL=f"http://127.0.0.1:{port}",
        AMPHORA_LOG_LEVEL="WARNING",
        AMPHORA_DATABASE_URL="",
    )
    env.update(overrides)
    return env


def rss_mb(pid: int, *, children: bool = True) -> float:
    """Resident set size of a process (and, by default, its descendants) in MiB."""
    proc = psutil.Process(pid)
    procs = [proc, *(proc.children(recursive=True) if children else [])]
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total / (1024 * 1024)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants so far."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for an empty list)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, float | int]:
    """``count`` plus mean / p50 / p95 / p99 / max in ms of request durations given in seconds."""
    ms = sorted(s * 1000 for s in seconds)
    return {
        "count": len(ms),
        "mean": round(sum(ms) / len(ms), 2) if ms else 0.0,
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(ms[-1], 2) if ms else 0.0,
    }


def wanted_backends(default: tuple[str, ...] = ("sqlite", "postgresql")) -> list[str]:
    """``BENCH_BACKENDS=sqlite`` (comma-separated) runs a subset of the backends."""
    wanted = [b.strip() for b in os.environ.get("BENCH_BACKENDS", "").split(",") if b.strip()]
    return wanted or list(default)


# --- the server process -------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    spawned_at: float
    startup_s: float | None = None
    _log: TextIO | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(
    env: Mapping[str, str], data_dir: Path, port: int, *, command: str = "serve"
) -> Server:
    """Spawn `amphora serve` (or another ``command``, such as ``worker``) with ``env``; its
    output goes to ``<data_dir>/server.log`` (``<command>.log`` for other commands).

    The working directory is the data dir, so that no ``.env`` file of the caller is read.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / ("server.log" if command == "serve" else f"{command}.log")
    log = log_path.open("w")
    spawned_at = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [*amphora_command(), command],
            env=dict(env),
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_server() signals all of it
        )
    except BaseException:
        log.close()
        raise
    return Server(proc, port, data_dir, log_path, dict(env), spawned_at, _log=log)


def wait_ready(server: Server, timeout: float = READY_TIMEOUT_S) -> float:
    """Poll ``/readyz`` until it answers 200; return seconds since the process was spawned."""
    deadline = server.spawned_at + timeout
    url = f"{server.base_url}/readyz"
    with httpx.Client(timeout=2.0) as client:
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"amphora serve exited with {server.proc.returncode} before it was ready:\n"
                    + server.log_tail()
                )
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - server.spawned_at
            except httpx.TransportError:
                pass
            if time.perf_counter() > deadline:
                raise TimeoutError(f"/readyz not 200 after {timeout:.0f} s:\n" + server.log_tail())
            time.sleep(0.02)


def stop_server(server: Server, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM the server's process group, wait, SIGKILL if it lingers; return the exit code."""
    proc = server.proc
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # Anything left in the group (there should be nothing) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode
    finally:
        if server._log is not None:
            server._log.close()
            server._log = None


@contextlib.contextmanager
def temp_dir(prefix: str = "amphora-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running_server(env: Mapping[str, str], data_dir: Path, port: int) -> Iterator[Server]:
    """Start a server, wait until ready (``server.startup_s``), always stop it afterwards."""
    server = start_server(env, data_dir, port)
    try:
        server.startup_s = wait_ready(server)
        yield server
    finally:
        stop_server(server)


# --- other servers -----------------------------------------------------------------------------


def fetch(url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One GET without any decoding of the body (httpx would gunzip it)."""
    host, _, path = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("GET", "/" + path, headers=dict(headers))
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


@contextlib.contextmanager
def foreground_process(command: list[str], health_url: str, name: str) -> Iterator[int]:
    """A foreground server process in its own session, once ``health_url`` answers 200: its
    pid. Stopped with SIGTERM afterwards (SIGKILL if it lingers)."""
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{name} exited with {proc.returncode}: {err}")
            with contextlib.suppress(OSError):
                if fetch(health_url, {})[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not answer within 20 s")
            time.sleep(0.05)
        yield proc.pid
    finally:
        proc.terminate()  # nginx: fast shutdown of the master and its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


NGINX_CONF = """
daemon off;
master_process on;
worker_processes {workers};
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /healthz {{ return 200 "ok"; }}
{locations}
    }}
}}
"""


@contextlib.contextmanager
def nginx_server(
    locations: str, *, workers: int, files: Sequence[Path], within: Path
) -> Iterator[tuple[str, int]]:
    """The Debian package's nginx in the foreground, on a free port of 127.0.0.1, with a prefix
    (config, pid, logs, temp paths) in a temp dir of its own: ``(base URL, master pid)``, once
    ``/healthz`` answers; stopped afterwards.

    ``locations``: the ``location`` blocks served besides ``/healthz`` (nginx syntax, braces
    as they are). As root, nginx's workers drop to nobody: each of ``files`` and its
    directories up to ``within`` (the bench's own temp dir, deleted afterwards) are made
    readable to them first.
    """
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    with temp_dir("amphora-bench-nginx-") as root:
        user = ""
        if os.geteuid() == 0:
            user = "user nobody nogroup;"
            for file in files:
                for part in [file, *file.parents]:
                    if not part.is_relative_to(within):
                        break
                    part.chmod(part.stat().st_mode | (0o004 if part == file else 0o005))
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=workers,
                user=user,
                root=root,
                port=port,
                locations=textwrap.indent(textwrap.dedent(locations).strip("\n"), " " * 8),
            )
        )
        base = f"http://127.0.0.1:{port}"
        command = [binary, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")]
        with foreground_process(command, base + "/healthz", "nginx") as pid:
            yield base, pid


# --- PostgreSQL ---------------------------------------------------------------------------------


def _psql(sql: str) -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtc",
            sql,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def create_pg_database(prefix: str = "amphora_bench") -> tuple[str, str]:
    """Create a throwaway database; return ``(name, url)``."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _psql(f'CREATE DATABASE "{name}"')
    return name, f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_pg_database(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def pg_database(prefix: str = "amphora_bench") -> Iterator[str]:
    """A throwaway PostgreSQL database (its URL), dropped afterwards even on errors."""
    name, url = create_pg_database(prefix)
    try:
        yield url
    finally:
        drop_pg_database(name)


@contextlib.contextmanager
def backend_env(
    backend: str, data_dir: Path, port: int, **overrides: str
) -> Iterator[dict[str, str]]:
    """The server environment for ``sqlite`` (embedded: SQLite, local files, in-process jobs)
    or ``postgresql`` (a throwaway database, dropped afterwards, plus Redis)."""
    if backend == "sqlite":
        yield base_env(data_dir, port, **overrides)
    elif backend == "postgresql":
        with pg_database() as url:
            yield base_env(
                data_dir, port, AMPHORA_DATABASE_URL=url, AMPHORA_REDIS_URL=REDIS_URL, **overrides
            )
    else:
        raise ValueError(f"unknown backend {backend!r}")


def db_upgrade(env: Mapping[str, str]) -> None:
    """`amphora db upgrade` against the database of ``env`` (before seeding it directly)."""
    data_dir = Path(env["AMPHORA_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*amphora_command(), "db", "upgrade"],
        env=dict(env),
        cwd=data_dir,
        stdin=subprocess.DEVNULL,
        check=True,
        capture_output=True,
        timeout=120,
    )


# --- in-process access (seeding, statement counts, query plans) ---------------------------------


def settings_for(env: Mapping[str, str]) -> Settings:
    """The project's ``Settings`` for a server environment, built in this process.

    Only ``env`` counts: no ``.env`` file is read and stray ``AMPHORA_*`` variables of this
    process are hidden while the settings are built.
    """
    from amphora.settings import Settings

    values: dict[str, Any] = {
        k.removeprefix("AMPHORA_").lower(): v for k, v in env.items() if k.startswith("AMPHORA_")
    }
    stray = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AMPHORA_")}
    try:
        return Settings(_env_file=None, **values)
    finally:
        os.environ.update(stray)


@contextlib.asynccontextmanager
async def in_process_client(env: Mapping[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """``(client, app)``: the app of ``amphora.app.create_app`` for ``env``, called through
    ``httpx.ASGITransport`` (no socket, no job consumer). Its engine is
    ``app.state.runtime.db.engine``; it is disposed of afterwards."""
    from amphora.app import create_app

    app = create_app(settings_for(env), run_jobs=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", timeout=120
        ) as client:
            yield client, app
    finally:
        await app.state.runtime.aclose()


@dataclass
class Statement:
    sql: str
    parameters: Any
    seconds: float


class StatementRecorder:
    """Records every SQL statement an engine sends (``before/after_cursor_execute``), with its
    parameters and duration. Use as a context manager around in-process requests."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sync_engine = engine.sync_engine
        self.statements: list[Statement] = []
        self._started: list[float] = []

    def _before(self, _conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, _conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        started = self._started.pop() if self._started else time.perf_counter()
        self.statements.append(Statement(sql, parameters, time.perf_counter() - started))

    def __enter__(self) -> StatementRecorder:
        from sqlalchemy import event

        event.listen(self.sync_engine, "before_cursor_execute", self._before)
        event.listen(self.sync_engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        from sqlalchemy import event

        event.remove(self.sync_engine, "before_cursor_execute", self._before)
        event.remove(self.sync_engine, "after_cursor_execute", self._after)

    def clear(self) -> None:
        self.statements.clear()

    @property
    def db_seconds(self) -> float:
        return sum(s.seconds for s in self.statements)

    def slowest(self) -> Statement | None:
        return max(self.statements, key=lambda s: s.seconds, default=None)

    def summary(self, width: int = 100) -> list[str]:
        """One line per statement: duration and the start of the SQL, whitespace collapsed."""
        return [
            f"{s.seconds * 1000:7.2f} ms  {' '.join(s.sql.split())[:width]}"
            for s in self.statements
        ]


def _short_path(filename: str) -> str:
    """A profiled function's file without this machine's directories."""
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python" and "/" in tail else tail
    return Path(filename).name if filename.startswith("/") else filename


async def profile_requests(
    client: httpx.AsyncClient, path: str, *, count: int = 20, top: int = 20, **kwargs: Any
) -> dict[str, Any]:
    """cProfile ``count`` in-process GETs of ``path``; the ``top`` functions by own time, per
    request. The profiler slows Python code down (roughly 2x), so read it as proportions;
    time in ``select``/``epoll`` is waiting for the database (or its driver thread)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(count):
        (await client.get(path, **kwargs)).raise_for_status()
    profiler.disable()
    wall = time.perf_counter() - started
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return {
        "requests": count,
        "profiled_ms_per_request": round(wall / count * 1000, 2),
        "top_self_time": [
            f"{tt / count * 1000:6.2f} ms self {ct / count * 1000:7.2f} ms cum  "
            f"{_short_path(filename)}:{line}({func})"
            for (filename, line, func), (_cc, _nc, tt, ct, _callers) in rows
        ],
    }


async def explain(engine: AsyncEngine, statement: Statement) -> list[str]:
    """The plan of a recorded statement: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE,
    BUFFERS)`` on PostgreSQL (which runs it once more, read-only queries only)."""
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql(prefix + statement.sql, statement.parameters)
        rows: list[Any] = [tuple(row) for row in result.all()]
    if not sqlite:
        return [str(row[0]) for row in rows]
    depth: dict[int, int] = {0: -1}
    lines = []
    for row in rows:  # (id, parent, notused, detail)
        node, parent, detail = int(row[0]), int(row[1]), str(row[3])
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


# --- users --------------------------------------------------------------------------------------


def create_user(env: Mapping[str, str], email: str, password: str, display_name: str) -> None:
    """`amphora user create` against the same database as the server."""
    subprocess.run(
        [
            *amphora_command(),
            "user",
            "create",
            email,
            "--password-stdin",
            "--display-name",
            display_name,
        ],
        env=dict(env),
        cwd=env["AMPHORA_DATA_DIR"],
        input=(password + "\n").encode(),
        check=True,
        capture_output=True,
        timeout=120,
    )


def new_credentials() -> tuple[str, str]:
    """A fresh ``(email, password)`` for a benchmark user."""
    import secrets

    return f"bench-{secrets.token_hex(4)}@example.com", "Pw-" + secrets.token_urlsafe(18)


def login(base_url: str, email: str, password: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# --- results ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
    }


def write_result(name: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """Print the result as JSON and keep it in ``bench/results/<name>.json``."""
    record = {
        "benchmark": name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine(),
        **result,
    }
    text = json.dumps(record, indent=2)
    print(text, flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(text + "\n")
    return record
