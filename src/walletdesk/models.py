"""Imports every domain's tables so that metadata (and Alembic) sees all of them."""

from __future__ import annotations


def import_all_models() -> None:
    from walletdesk.idempotency import models as _idempotency  # noqa: F401
    from walletdesk.ledger import models as _ledger  # noqa: F401
    from walletdesk.wallet import models as _wallet  # noqa: F401
