"""Outgoing mail: services write `MailMessage` rows in the request's transaction; after it commits, `send_pending`
delivers them (a background task of the response), so a rolled-back request sends nothing and a failed send
leaves the message in the outbox with its error."""

from __future__ import annotations

import logging
import smtplib
import uuid
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from coderai_assets.settings import Settings
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.models import MailMessage, utcnow
from coderai_assets.storage.repositories import accounts

log = logging.getLogger("coderai.mail")


def _deliver(settings: Settings, message: MailMessage) -> None:
    url = urlsplit(settings.smtp_url.get_secret_value())
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = settings.mail_from, message.to_email, message.subject
    mail.set_content(message.body)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with smtp_class(
        url.hostname or "localhost", url.port or (465 if url.scheme == "smtps" else 587), timeout=30
    ) as smtp:
        if url.scheme == "smtp":
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(mail)


def send_pending(factory: sessionmaker[Session], settings: Settings, tenant_id: uuid.UUID) -> int:
    """Sends the workspace's unsent mail; the number sent."""
    sent = 0
    with tenant_session(factory, tenant_id) as session:
        pending = accounts.unsent_mail(session)
        for message in pending:
            if not settings.smtp_url.get_secret_value():
                if settings.env != "production":
                    log.warning(
                        "mail to %s (no CODERAI_SMTP_URL, not sent): %s\n%s",
                        message.to_email,
                        message.subject,
                        message.body,
                    )
                continue  # stays in the outbox for an operator's mailer
            message.attempts += 1
            try:
                _deliver(settings, message)
            except (OSError, smtplib.SMTPException) as exc:
                message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                log.error("mail to %s failed: %s", message.to_email, message.last_error)
                continue
            message.sent_at, message.last_error = utcnow(), None
            sent += 1
    return sent
