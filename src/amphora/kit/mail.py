"""Mail: Jinja2 text + HTML templates, queued in the database, delivered by a job over SMTP.

Without ``AMPHORA_SMTP_URL`` a mail stays in the outbox table, readable with
``amphora mail outbox`` — enough to sign up on a laptop without a mail server.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from amphora.kit.clock import utcnow
from amphora.kit.jobs import job
from amphora.models import MailStatus, OutboxMail

logger = logging.getLogger("amphora.mail")

_templates = Environment(
    loader=PackageLoader("amphora", "templates/mail"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render(template: str, context: dict[str, Any]) -> RenderedMail:
    subject = _templates.get_template(f"{template}.subject.txt").render(context).strip()
    text = _templates.get_template(f"{template}.txt").render(context)
    html = _templates.get_template(f"{template}.html").render(context)
    return RenderedMail(subject=subject, text=text, html=html)


async def queue_mail(
    session: AsyncSession, *, to: str, template: str, context: dict[str, Any]
) -> OutboxMail:
    """Render now (so the mail says what was true at the time), send after the commit."""
    rendered = render(template, context)
    mail = OutboxMail(
        to_address=to,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        template=template,
        status=MailStatus.queued,
    )
    session.add(mail)
    await session.flush()
    deliver_mail.defer(session, str(mail.id))
    return mail


@dataclass(frozen=True)
class SmtpConfig:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    timeout: float

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """``smtp://user:pass@host:587`` (STARTTLS when offered), ``smtps://…:465`` (TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("SMTP URL must look like smtp://user:password@host:port")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", [""])[0].lower()
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
            start_tls={"true": True, "false": False}.get(starttls),
            timeout=float(query.get("timeout", ["30"])[0]),
        )


def build_message(mail: OutboxMail, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> ") or None)
    message.set_content(mail.text_body)
    message.add_alternative(mail.html_body, subtype="html")
    return message


class MailNotDelivered(Exception):
    """The SMTP server refused or could not be reached; the job retries."""


async def deliver(
    session: AsyncSession, *, mail_id: uuid.UUID, smtp_url: str | None, sender: str
) -> str | None:
    """Hand one queued mail to SMTP (or leave it in the outbox). Safe to run twice.

    Returns the delivery error, recorded on the row, so the caller can commit it and retry.
    """
    mail = await session.get(OutboxMail, mail_id, with_for_update=True)
    if mail is None or mail.status in {MailStatus.sent, MailStatus.outbox}:
        return None
    if not smtp_url:
        mail.status = MailStatus.outbox
        logger.info("mail %s to the outbox (no SMTP configured)", mail.id)
        return None
    config = SmtpConfig.from_url(smtp_url)
    mail.attempts += 1
    try:
        await aiosmtplib.send(
            build_message(mail, sender=sender),
            hostname=config.hostname,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.use_tls,
            start_tls=config.start_tls,
            timeout=config.timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        mail.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        logger.warning("mail %s not delivered: %s", mail.id, mail.last_error)
        return mail.last_error
    mail.last_error = None
    mail.status = MailStatus.sent
    mail.sent_at = utcnow()
    # The bodies held one-shot links; once delivered they need not be kept.
    mail.text_body = mail.html_body = ""
    logger.info("mail %s sent (%s)", mail.id, mail.template)
    return None


@job(retries=6, retry_delay=5, backoff=3.0)
async def deliver_mail(ctx: Any, mail_id: str) -> None:
    settings = ctx.settings
    smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
    async with ctx.db.session() as session:
        error = await deliver(
            session, mail_id=uuid.UUID(mail_id), smtp_url=smtp_url, sender=settings.mail_from
        )
    if error:
        raise MailNotDelivered(error)
