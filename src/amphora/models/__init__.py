"""ORM models, one module per table, all re-exported here (for Alembic and the services)."""

from amphora.kit.db import Base
from amphora.models.access_token import AccessToken, TokenKind
from amphora.models.analytics_state import AnalyticsState
from amphora.models.artwork import Artwork
from amphora.models.download import Download
from amphora.models.download_breakdown import DownloadBreakdown
from amphora.models.download_day import DownloadDay
from amphora.models.download_month import DownloadMonth
from amphora.models.episode import Episode
from amphora.models.episode_launch import EpisodeLaunch
from amphora.models.failed_job import FailedJob
from amphora.models.feed_slug import FeedSlug
from amphora.models.hit import Hit
from amphora.models.import_file import FileKind, FileState, ImportFile
from amphora.models.import_item import ImportItem
from amphora.models.listen_event import ListenEvent
from amphora.models.listener_count import ListenerCount
from amphora.models.listener_day import ListenerDay
from amphora.models.log_import import LogImport
from amphora.models.media_file import MediaFile
from amphora.models.one_time_token import OneTimeToken, TokenPurpose
from amphora.models.outbox_mail import MailStatus, OutboxMail
from amphora.models.ping_attempt import PingAttempt
from amphora.models.search_document import SearchDocument
from amphora.models.series import Series
from amphora.models.show import Show
from amphora.models.show_export import ShowExport
from amphora.models.show_import import ImportStatus, ShowImport
from amphora.models.show_member import Role, ShowMember
from amphora.models.subscriber import Subscriber
from amphora.models.transcript import Transcript
from amphora.models.unknown_user_agent import UnknownUserAgent
from amphora.models.upload import Upload, UploadStatus
from amphora.models.user import User
from amphora.models.user_email import UserEmail

__all__ = [
    "AccessToken",
    "AnalyticsState",
    "Artwork",
    "Base",
    "Download",
    "DownloadBreakdown",
    "DownloadDay",
    "DownloadMonth",
    "Episode",
    "EpisodeLaunch",
    "FailedJob",
    "FeedSlug",
    "FileKind",
    "FileState",
    "Hit",
    "ImportFile",
    "ImportItem",
    "ImportStatus",
    "ListenEvent",
    "ListenerCount",
    "ListenerDay",
    "LogImport",
    "MailStatus",
    "MediaFile",
    "OneTimeToken",
    "OutboxMail",
    "PingAttempt",
    "Role",
    "SearchDocument",
    "Series",
    "Show",
    "ShowExport",
    "ShowImport",
    "ShowMember",
    "Subscriber",
    "TokenKind",
    "TokenPurpose",
    "Transcript",
    "UnknownUserAgent",
    "Upload",
    "UploadStatus",
    "User",
    "UserEmail",
]
