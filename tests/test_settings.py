"""Settings: embedded defaults, production refusals, trusted proxies."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from amphora.kit.net import client_ip
from amphora.settings import Settings


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert (
        settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'amphora.db'}"
    )
    assert settings.embedded_jobs and not settings.uses_redis
    first = settings.resolved_secret_key
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path).resolved_secret_key == first  # kept across restarts


def test_postgres_urls_get_the_async_driver(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgres://u@db/amphora")
    assert settings.resolved_database_url == "postgresql+asyncpg://u@db/amphora"
    assert not settings.is_sqlite


@pytest.mark.parametrize("secret", ["", "change-me", "short"])
def test_production_refuses_placeholder_secrets(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(
            env="production", secret_key=secret, data_dir=tmp_path, database_url="postgresql://x/y"
        )


def test_production_with_real_settings(tmp_path: Path) -> None:
    settings = Settings(
        env="production", secret_key="k" * 48, data_dir=tmp_path, database_url="postgresql://x/y"
    )
    assert settings.resolved_secret_key == "k" * 48


def test_trusted_proxies_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMPHORA_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32")
    settings = Settings(data_dir=tmp_path)
    assert settings.trusted_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    monkeypatch.setenv("AMPHORA_TRUSTED_PROXIES", "not-a-network")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path)


TRUSTED = [ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("198.51.100.9", "1.2.3.4", "198.51.100.9"),  # untrusted peer: header ignored
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "1.2.3.4, 10.0.0.5", "1.2.3.4"),  # skip our own proxies
        ("10.0.0.2", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client's own claims are not trusted
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.2", None, "10.0.0.2"),
    ],
)
def test_client_ip(peer: str, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected
