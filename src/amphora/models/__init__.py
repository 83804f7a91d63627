"""ORM models, one module per table, all re-exported here (for Alembic and the services)."""

from amphora.kit.db import Base
from amphora.models.access_token import AccessToken, TokenKind
from amphora.models.failed_job import FailedJob
from amphora.models.one_time_token import OneTimeToken, TokenPurpose
from amphora.models.outbox_mail import MailStatus, OutboxMail
from amphora.models.user import User
from amphora.models.user_email import UserEmail

__all__ = [
    "AccessToken",
    "Base",
    "FailedJob",
    "MailStatus",
    "OneTimeToken",
    "OutboxMail",
    "TokenKind",
    "TokenPurpose",
    "User",
    "UserEmail",
]
