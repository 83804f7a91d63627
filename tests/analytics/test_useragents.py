"""OPAWG user-agent classification: the data set's own examples, exclusions, caching, loading,
installing (from a directory, over HTTP, from the command line) and keeping a good set when an
update is broken."""

from __future__ import annotations

import functools
import json
import os
import random
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amphora.analytics.useragents import (
    FILES,
    MATCH_ORDER,
    Agent,
    UserAgentDataError,
    UserAgents,
    install_user_agents,
    load_user_agents,
)
from amphora.cli import app
from amphora.kit.errors import AmphoraError
from amphora.kit.http import UrlNotAllowed
from amphora.settings import Settings
from tests.conftest import IN_CI

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "user-agents-v2"

# Examples the data set itself contradicts under its documented first-match rule (its own
# checks only test devices/referrers examples against their own pattern, not first-match).
KNOWN_CONTRADICTIONS: dict[tuple[str, str, str], str] = {
    (
        "devices",
        "Apple Watch",
        "Watch/1140 CFNetwork/3860.200.71 Darwin/25.1.0",
    ): "'Apple iPhone' comes first in devices.json and its pattern matches any 'CFNetwork'",
}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if not all((DATA / f"{name}.json").is_file() for name in FILES):
        message = f"the OPAWG user-agents-v2 data set is not at {DATA}"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires it", pytrace=False)
        pytest.skip(message)
    return DATA


@pytest.fixture(scope="module")
def agents(data_dir: Path) -> UserAgents:
    return UserAgents.load(data_dir)


def entries(data_dir: Path, name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((data_dir / f"{name}.json").read_text())["entries"]
    return loaded


def entry_named(data_dir: Path, name: str, entry_name: str) -> dict[str, Any]:
    found = [e for e in entries(data_dir, name) if e["name"] == entry_name]
    assert len(found) == 1, f"{name}.json has no single entry {entry_name!r}"
    return found[0]


class Reference:
    """The data set's README algorithm, written as plainly as possible, for comparison."""

    def __init__(self, data_dir: Path) -> None:
        self.files = {
            name: [(e["name"], re.compile(e["pattern"], re.ASCII)) for e in entries(data_dir, name)]
            for name in FILES
        }

    def first(self, name: str, text: str) -> str | None:
        for entry_name, pattern in self.files[name]:
            if pattern.search(text):
                return entry_name
        return None

    def classify(self, user_agent: str) -> tuple[str, str | None, str | None]:
        text = user_agent.replace("\r", "").replace("\n", "")
        for name, kind in MATCH_ORDER:
            found = self.first(name, text)
            if found is not None:
                device = None if kind == "bot" else self.first("devices", text)
                return kind, found, device
        return "unknown", None, self.first("devices", text)


def copy_data(data_dir: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(data_dir / f"{name}.json", target / f"{name}.json")
    if (data_dir / "LICENSE").is_file():
        shutil.copyfile(data_dir / "LICENSE", target / "LICENSE")
    return target


def leftovers(directory: Path) -> list[str]:
    """Staging or swapped-out directories an install left next to the installed one."""
    return sorted(p.name for p in directory.parent.iterdir() if p.name.startswith("."))


# --- the data set's own examples ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), MATCH_ORDER)
def test_every_example_resolves_to_its_own_entry(
    agents: UserAgents, data_dir: Path, name: str, kind: str
) -> None:
    failures = []
    checked = 0
    for entry in entries(data_dir, name):
        for example in entry.get("examples", []):
            checked += 1
            agent = agents.classify(example)
            if (agent.kind, agent.name) != (kind, entry["name"]):
                failures.append(f"{entry['name']}: {example!r} -> {agent.kind} {agent.name}")
    assert checked > 0
    assert not failures, f"{len(failures)} of {checked} examples in {name}.json:\n" + "\n".join(
        failures
    )


def test_every_device_example_resolves_to_its_device(agents: UserAgents, data_dir: Path) -> None:
    failures = []
    for entry in entries(data_dir, "devices"):
        for example in entry.get("examples", []):
            if ("devices", entry["name"], example) in KNOWN_CONTRADICTIONS:
                continue
            agent = agents.classify(example)
            if agent.device != entry["name"] or agent.device_category != entry["category"]:
                failures.append(f"{entry['name']}: {example!r} -> {agent}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("name", "entry_name", "example"),
    list(KNOWN_CONTRADICTIONS),
    ids=[f"{n}:{e}" for n, e, _ in KNOWN_CONTRADICTIONS],
)
@pytest.mark.xfail(strict=True, reason="the data set contradicts itself (KNOWN_CONTRADICTIONS)")
def test_known_contradictions_still_contradict(
    agents: UserAgents, name: str, entry_name: str, example: str
) -> None:
    # strict: once the data set is fixed this passes, fails the run, and the entry goes.
    assert name == "devices"
    assert agents.classify(example).device == entry_name


def test_every_referrer_example_resolves_to_its_referrer(
    agents: UserAgents, data_dir: Path
) -> None:
    browser = next(
        agent
        for entry in entries(data_dir, "browsers")
        for example in entry.get("examples", [])
        if (agent := agents.classify(example)).kind == "browser"
    )
    failures = []
    checked = 0
    for entry in entries(data_dir, "referrers"):
        for example in entry.get("examples", []):
            checked += 1
            if agents.referrer(example, browser) != entry["name"]:
                failures.append(f"{entry['name']}: {example!r}")
    assert checked > 0 and not failures, "\n".join(failures)


def test_referrers_only_for_browser_traffic(agents: UserAgents, data_dir: Path) -> None:
    referrer = entries(data_dir, "referrers")[0]
    example = referrer["examples"][0]
    app_agent = agents.classify(entry_named(data_dir, "apps", "Overcast")["examples"][0])
    assert app_agent.kind == "app"
    assert agents.referrer(example, app_agent) is None
    browser = Agent(kind="browser", name="any browser")
    assert agents.referrer(example, browser) == referrer["name"]
    assert agents.referrer(None, browser) is None
    assert agents.referrer("https://nowhere.invalid/page", browser) is None


def test_matches_the_plain_first_match_algorithm(agents: UserAgents, data_dir: Path) -> None:
    """The prefilter skips patterns that cannot match; it must never change an answer. Checked
    on every example of every file and on damaged copies of them (cut, spliced, prefixed)."""
    reference = Reference(data_dir)
    texts = [
        e for name in FILES for entry in entries(data_dir, name) for e in entry.get("examples", [])
    ]
    rng = random.Random(20260806)
    damaged = []
    for text in texts:
        cut = rng.randrange(len(text) + 1)
        damaged += [
            text[cut:],
            text[:cut],
            text[:cut] + rng.choice(["x", " ", "/", "A", "Mozilla/5.0 "]) + text[cut + 1 :],
            "X" + text,
            text.lower(),
        ]
    differences = []
    for text in texts + damaged:
        if not text.strip():
            continue
        agent = agents.classify(text)
        if (agent.kind, agent.name, agent.device) != reference.classify(text):
            differences.append(f"{text!r}: {agent} != {reference.classify(text)}")
    assert not differences, "\n".join(differences[:20])


# --- who counts ---------------------------------------------------------------------------------


def test_apple_watch_requests_are_bots(agents: UserAgents, data_dir: Path) -> None:
    watch = [
        example
        for entry in entries(data_dir, "bots")
        for example in entry.get("examples", [])
        if example.startswith("atc/") or "(null) watchOS/" in example
    ]
    assert any("atc/1.0 watchOS/" in e for e in watch) and any("(null)" in e for e in watch)
    for example in watch:
        agent = agents.classify(example)
        assert agent.kind == "bot" and agent.excluded, example
        assert agent.device is None  # devices are only looked up for non-bots


def test_server_side_libraries_are_excluded(agents: UserAgents, data_dir: Path) -> None:
    libraries = entries(data_dir, "libraries")
    server_side = [e for e in libraries if e.get("category") == "bot" and e.get("examples")]
    players = [e for e in libraries if e.get("category") != "bot" and e.get("examples")]
    assert server_side and players
    for entry in server_side:
        agent = agents.classify(entry["examples"][0])
        assert (agent.kind, agent.category, agent.excluded) == ("library", "bot", True)
    for entry in players:
        agent = agents.classify(entry["examples"][0])
        assert agent.kind == "library" and not agent.excluded, entry["name"]


@pytest.mark.parametrize("app_name", ["Apple Podcasts", "Overcast"])
def test_real_apps_count(agents: UserAgents, data_dir: Path, app_name: str) -> None:
    examples = entry_named(data_dir, "apps", app_name)["examples"]
    assert examples
    for example in examples:
        agent = agents.classify(example)
        assert agent.kind == "app" and agent.name == app_name, example
        assert not agent.excluded


def test_apps_get_a_device(agents: UserAgents, data_dir: Path) -> None:
    devices = {e["name"]: e["category"] for e in entries(data_dir, "devices")}
    example = next(
        e
        for e in entry_named(data_dir, "apps", "Apple Podcasts")["examples"]
        if "CFNetwork" in e and "watch" not in e.lower()
    )
    agent = agents.classify(example)
    assert agent.device in devices
    assert agent.device_category == devices[agent.device]
    # v2 has no ``os`` field anywhere (it dropped the original list's os attribute).
    assert agent.os is None


@pytest.mark.parametrize("user_agent", [None, "", "\n", "\r\n", "   "])
def test_missing_user_agent_is_excluded(agents: UserAgents, user_agent: str | None) -> None:
    agent = agents.classify(user_agent)
    assert agent.kind == "missing" and agent.excluded
    assert agent.name is None and agent.device is None


def test_unknown_user_agent_counts(agents: UserAgents, data_dir: Path) -> None:
    user_agent = "zq-unlisted-fetcher 7"
    assert Reference(data_dir).classify(user_agent) == ("unknown", None, None)
    agent = agents.classify(user_agent)
    assert (agent.kind, agent.name, agent.category) == ("unknown", None, None)
    assert not agent.excluded


def test_newlines_are_removed_before_matching(agents: UserAgents, data_dir: Path) -> None:
    example = entry_named(data_dir, "apps", "Overcast")["examples"][0]
    broken = example[:4] + "\r\n" + example[4:]
    assert agents.classify(broken) == agents.classify(example)
    assert agents.classify(broken).name == "Overcast"


# --- the cache ----------------------------------------------------------------------------------


def test_results_are_cached_per_user_agent(data_dir: Path) -> None:
    agents = UserAgents.load(data_dir)  # a fresh cache, whatever other tests did
    example = entry_named(data_dir, "apps", "Overcast")["examples"][0]
    assert agents._classify(example) is not agents._classify(example)  # uncached: new objects
    first = agents.classify(example)
    before = agents.cache_info()
    second = agents.classify(example)
    after = agents.cache_info()
    assert second is first
    assert after.hits == before.hits + 1 and after.misses == before.misses
    assert agents.classify(example + " ") is not first  # another UA is another entry
    assert agents.cache_info().currsize == 2


def test_very_long_user_agents_are_classified_but_not_cached(
    agents: UserAgents, data_dir: Path
) -> None:
    example = entry_named(data_dir, "apps", "Overcast")["examples"][0]
    long = example + " " + "x" * 5000
    size = agents.cache_info().currsize
    assert agents.classify(long).name == "Overcast"
    assert agents.cache_info().currsize == size


# --- loading ------------------------------------------------------------------------------------


def test_counts_and_version(agents: UserAgents, data_dir: Path, tmp_path: Path) -> None:
    assert agents.counts == {name: len(entries(data_dir, name)) for name in FILES}
    copy = copy_data(data_dir, tmp_path / "copy")
    assert UserAgents.load(copy).version == agents.version
    (copy / "browsers.json").write_text((copy / "browsers.json").read_text() + "\n")
    assert UserAgents.load(copy).version != agents.version


def test_load_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UserAgentDataError, match="does not exist"):
        UserAgents.load(tmp_path / "nowhere")


def test_load_refuses_a_missing_file(data_dir: Path, tmp_path: Path) -> None:
    copy = copy_data(data_dir, tmp_path / "copy")
    (copy / "referrers.json").unlink()
    with pytest.raises(UserAgentDataError, match=r"referrers\.json is missing"):
        UserAgents.load(copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"entries": [', "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        ('{"entries": {}}', "no 'entries' list"),
        ('{"entries": [{"name": "A", "pattern": "a(["}]}', "does not compile"),
        ('{"entries": [{"pattern": "a"}]}', "has no name"),
        ('{"entries": [{"name": "A", "pattern": "a", "category": 3}]}', "must be a string"),
    ],
)
def test_load_refuses_broken_files(
    data_dir: Path, tmp_path: Path, content: str | bytes, message: str
) -> None:
    copy = copy_data(data_dir, tmp_path / "copy")
    target = copy / "apps.json"
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserAgentDataError, match=message) as caught:
        UserAgents.load(copy)
    assert "apps.json" in str(caught.value)
    assert isinstance(caught.value, AmphoraError)


def test_load_user_agents_reloads_only_after_a_change(data_dir: Path, tmp_path: Path) -> None:
    assert load_user_agents(tmp_path / "not-installed") is None
    copy = copy_data(data_dir, tmp_path / "copy")
    first = load_user_agents(copy)
    assert first is not None
    assert load_user_agents(copy) is first
    bots = copy / "bots.json"
    data = json.loads(bots.read_text())
    data["entries"].insert(0, {"name": "Test Bot", "pattern": "^zq-test-bot/"})
    bots.write_text(json.dumps(data))
    stat = bots.stat()
    os.utime(bots, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_user_agents(copy)
    assert second is not None and second is not first
    assert second.version != first.version
    assert second.classify("zq-test-bot/1").name == "Test Bot"
    assert first.classify("zq-test-bot/1").kind == "unknown"


# --- installing ---------------------------------------------------------------------------------


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", env="test", **overrides)


async def test_install_from_a_directory(data_dir: Path, tmp_path: Path) -> None:
    source = copy_data(data_dir, tmp_path / "source")
    settings = make_settings(tmp_path)
    installed = await install_user_agents(settings, str(source))
    assert installed == settings.resolved_user_agents_dir
    for name in FILES:
        assert (installed / f"{name}.json").read_bytes() == (source / f"{name}.json").read_bytes()
    assert (installed / "LICENSE").read_bytes() == (source / "LICENSE").read_bytes()
    assert UserAgents.load(installed).version == UserAgents.load(data_dir).version
    assert leftovers(installed) == []

    # an update replaces the set, and nothing is left behind
    (source / "LICENSE").unlink()
    apps = json.loads((source / "apps.json").read_text())
    apps["entries"] = apps["entries"][:10]
    (source / "apps.json").write_text(json.dumps(apps))
    again = await install_user_agents(settings, str(source))
    assert again == installed
    assert UserAgents.load(installed).counts["apps"] == 10
    assert not (installed / "LICENSE").exists()
    assert leftovers(installed) == []


async def test_a_broken_update_keeps_the_installed_set(data_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    installed = await install_user_agents(settings, str(copy_data(data_dir, tmp_path / "good")))
    before = {p.name: p.read_bytes() for p in installed.iterdir()}

    broken = copy_data(data_dir, tmp_path / "broken")
    (broken / "apps.json").write_text('{"entries": [')
    with pytest.raises(UserAgentDataError, match=r"apps\.json is not valid JSON"):
        await install_user_agents(settings, str(broken))
    incomplete = copy_data(data_dir, tmp_path / "incomplete")
    (incomplete / "devices.json").unlink()
    with pytest.raises(UserAgentDataError, match=r"devices\.json is missing"):
        await install_user_agents(settings, str(incomplete))
    with pytest.raises(UserAgentDataError, match="not a directory"):
        await install_user_agents(settings, str(tmp_path / "nowhere"))
    with pytest.raises(UserAgentDataError, match="Only http"):
        await install_user_agents(settings, "ftp://example.com/src/")

    assert {p.name: p.read_bytes() for p in installed.iterdir()} == before
    assert leftovers(installed) == []


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web_root(data_dir: Path, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on loopback shaped like the upstream repository: the JSON files in
    ``src/``, the LICENSE at the top."""
    root = tmp_path / "www"
    copy_data(data_dir, root / "src")
    (root / "src" / "LICENSE").rename(root / "LICENSE")
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_install_over_http(
    data_dir: Path, tmp_path: Path, web_root: tuple[Path, str]
) -> None:
    root, base = web_root
    settings = make_settings(tmp_path, fetch_allowed_networks=["127.0.0.0/8"])
    installed = await install_user_agents(settings, f"{base}/src")  # no trailing slash
    assert UserAgents.load(installed).version == UserAgents.load(data_dir).version
    assert (installed / "LICENSE").read_bytes() == (root / "LICENSE").read_bytes()
    before = {p.name: p.read_bytes() for p in installed.iterdir()}

    (root / "src" / "libraries.json").write_text('{"entries": [{"name": "x", "pattern": "("}]}')
    with pytest.raises(UserAgentDataError, match="does not compile"):
        await install_user_agents(settings, f"{base}/src/")
    (root / "src" / "libraries.json").unlink()
    with pytest.raises(AmphoraError, match="404"):
        await install_user_agents(settings, f"{base}/src/")
    assert {p.name: p.read_bytes() for p in installed.iterdir()} == before
    assert leftovers(installed) == []


async def test_install_goes_through_the_ssrf_guard(
    tmp_path: Path, web_root: tuple[Path, str]
) -> None:
    _, base = web_root
    settings = make_settings(tmp_path)  # loopback not allowed
    with pytest.raises(UrlNotAllowed):
        await install_user_agents(settings, f"{base}/src/")
    assert not settings.resolved_user_agents_dir.exists()


async def test_install_defaults_to_the_configured_url(
    data_dir: Path, tmp_path: Path, web_root: tuple[Path, str]
) -> None:
    _, base = web_root
    settings = make_settings(
        tmp_path, fetch_allowed_networks=["127.0.0.0/8"], user_agents_url=f"{base}/src/"
    )
    installed = await install_user_agents(settings)
    assert UserAgents.load(installed).counts == UserAgents.load(data_dir).counts


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in list(os.environ):
        if key.startswith("AMPHORA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AMPHORA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AMPHORA_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no stray .env file
    return tmp_path / "data" / "user-agents"


def test_update_user_agents_command(data_dir: Path, tmp_path: Path, cli_env: Path) -> None:
    source = copy_data(data_dir, tmp_path / "source")
    result = CliRunner().invoke(app, ["analytics", "update-user-agents", "--from", str(source)])
    assert result.exit_code == 0, result.output
    assert str(cli_env.resolve()) in result.output
    agents = UserAgents.load(cli_env)
    assert agents.version in result.output
    for name in FILES:
        assert f"{name}.json: {agents.counts[name]} entries" in result.output


def test_update_user_agents_command_failure(data_dir: Path, tmp_path: Path, cli_env: Path) -> None:
    broken = copy_data(data_dir, tmp_path / "broken")
    (broken / "bots.json").write_text("not json")
    result = CliRunner().invoke(app, ["analytics", "update-user-agents", "--from", str(broken)])
    assert result.exit_code == 1
    assert "not updated" in result.output and "bots.json is not valid JSON" in result.output
    assert not cli_env.exists()
