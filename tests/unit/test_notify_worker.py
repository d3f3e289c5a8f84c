"""The worker's pure rules: how long to wait before a retry, and what an error may reveal."""

from __future__ import annotations

import smtplib
from datetime import timedelta

from walletdesk.notify.worker import MAX_DELAY, backoff, describe_error


def test_backoff_doubles_from_thirty_seconds_and_stops_at_an_hour() -> None:
    waits = [backoff(n) for n in range(1, 10)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits == sorted(waits)
    assert max(waits) == MAX_DELAY == timedelta(hours=1)


def test_an_error_is_described_by_class_and_code_never_by_its_text() -> None:
    error = smtplib.SMTPDataError(451, b"message 'your code is 482913' deferred")
    assert describe_error(error) == "SMTPDataError 451"
    assert describe_error(ConnectionRefusedError(111, "refused")) == "ConnectionRefusedError 111"
    assert describe_error(RuntimeError("code 482913")) == "RuntimeError"
