"""What the hotline's e2e tests share: the auth token the server checks, open phone lines."""

from __future__ import annotations

from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.support import service as hours

TOKEN = Settings().twilio_auth_token.get_secret_value()  # the server's default, unset in e2e


def always_open(db: Database) -> None:
    """Agents answer around the clock, so reaching the queue does not depend on the hour."""
    with db.unit_of_work() as session:
        hours.set_schedule(
            session, "phone", time_zone="Asia/Shanghai", weekly={}, always_open=True, actor="test"
        )
