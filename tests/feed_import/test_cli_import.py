"""`amphora import URL --owner EMAIL`: the import runs in the command, with a progress bar."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.fakes.oldhost import old_host
from tests.feed_import.sample import feed_xml, item_xml
from tests.test_cli import amphora


def test_import_command_brings_a_show_in(tmp_path: Path) -> None:
    assert amphora(tmp_path, "db", "upgrade").returncode == 0
    created = amphora(
        tmp_path,
        "user",
        "create",
        "ada@example.com",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert created.returncode == 0, created.stderr
    env = {"AMPHORA_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8"}
    with old_host() as host:
        feed_url = host.put("/feed.xml", feed_xml(host, item_xml(host, 1) + item_xml(host, 2)))
        result = amphora(tmp_path, "import", feed_url, "--owner", "ada@example.com", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "imported show" in result.stdout
        assert "2 episodes" in result.stdout
        assert {s.path for s in host.seen} >= {"/feed.xml", "/media/ep1.mp3", "/media/ep2.mp3"}

        nobody = amphora(tmp_path, "import", feed_url, "--owner", "nobody@example.com", env=env)
        assert nobody.returncode == 1
        assert "No account with the address nobody@example.com" in nobody.stdout
    missing = amphora(tmp_path, "import", str(tmp_path / "nope.zip"), "--owner", "ada@example.com")
    assert missing.returncode == 2
    # A zip that is no export is refused before any import exists, and its copy is removed.
    not_export = tmp_path / "holiday-photos.zip"
    with zipfile.ZipFile(not_export, "w") as archive:
        archive.writestr("beach.jpg", b"not really")
    refused = amphora(tmp_path, "import", str(not_export), "--owner", "ada@example.com")
    assert refused.returncode == 1
    assert "no manifest.json" in refused.stdout
    assert "Import failed" not in refused.stdout  # no import was started
    unknown = amphora(tmp_path, "import", str(not_export), "--owner", "nobody@example.com")
    assert unknown.returncode == 1
    staged = tmp_path / "imports" / "archives"
    assert not staged.exists() or not any(staged.iterdir())
