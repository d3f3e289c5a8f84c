"""What the hotline's e2e tests share: the auth token the server checks, open phone lines, a
softphone that dials a test server without printing."""

from __future__ import annotations

import httpx

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.hotline.softphone import Softphone
from walletdesk.support import service as hours

TOKEN = Settings().twilio_auth_token.get_secret_value()  # the server's default, unset in e2e


def always_open(db: Database) -> None:
    """Agents answer around the clock, so reaching the queue does not depend on the hour."""
    with db.unit_of_work() as session:
        hours.set_schedule(
            session, "phone", time_zone="Asia/Shanghai", weekly={}, always_open=True, actor="test"
        )


def silent_phone(client: httpx.Client, url: str, number: str) -> Softphone:
    """A softphone calling the server at `url` from `number`, printing nothing."""
    return Softphone(client, url, TOKEN, from_number=number, show=lambda _: None)
