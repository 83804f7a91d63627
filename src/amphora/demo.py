"""Demo data for `amphora serve --demo`: a verified creator whose login is printed at start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from amphora.account import repository, service
from amphora.runtime import Runtime

DEMO_EMAIL = "demo@example.com"
CREDENTIALS_FILE = "demo-login.txt"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str


async def seed_demo(runtime: Runtime) -> DemoLogin:
    """Idempotent: the first run creates the creator, later runs reprint the same login."""
    path = runtime.settings.resolved_data_dir / CREDENTIALS_FILE
    async with runtime.db.session() as session:
        existing = await repository.user_by_email(session, DEMO_EMAIL)
        if existing is not None and path.exists():
            return DemoLogin(DEMO_EMAIL, path.read_text().strip())
        password = secrets.token_urlsafe(12)
        if existing is None:
            await service.create_user(
                session,
                email=DEMO_EMAIL,
                password=password,
                display_name="Demo Creator",
                is_verified=True,
            )
        else:  # the credentials file was removed: issue a fresh password
            existing.password_hash = await service.hash_password(password)
    path.touch(mode=0o600)
    path.write_text(password)
    return DemoLogin(DEMO_EMAIL, password)
