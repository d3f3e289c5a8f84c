"""In-memory senders for unit tests. Integration tests use real SMTP and the SMS file instead."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SentEmail:
    to: str
    subject: str
    body: str
    key: str


@dataclass(frozen=True, slots=True)
class SentSms:
    to: str
    text: str
    key: str


@dataclass
class FakeEmailSender:
    """Records each email; set `failure` to make every send raise it instead."""

    sent: list[SentEmail] = field(default_factory=list)
    failure: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send_email(self, *, to: str, subject: str, body: str, key: str) -> None:
        if self.failure is not None:
            raise self.failure
        with self._lock:
            self.sent.append(SentEmail(to, subject, body, key))


@dataclass
class FakeSmsSender:
    """Records each SMS; set `failure` to make every send raise it instead."""

    sent: list[SentSms] = field(default_factory=list)
    failure: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send_sms(self, *, to: str, text: str, key: str) -> None:
        if self.failure is not None:
            raise self.failure
        with self._lock:
            self.sent.append(SentSms(to, text, key))
