"""Imports every domain's tables so that metadata (and Alembic) sees all of them."""

from __future__ import annotations


def import_all_models() -> None:
    from walletdesk.audit import models as _audit  # noqa: F401
    from walletdesk.disputes import models as _disputes  # noqa: F401
    from walletdesk.hotline import models as _hotline  # noqa: F401
    from walletdesk.idempotency import models as _idempotency  # noqa: F401
    from walletdesk.identity import models as _identity  # noqa: F401
    from walletdesk.kit import ratelimit as _ratelimit  # noqa: F401
    from walletdesk.ledger import models as _ledger  # noqa: F401
    from walletdesk.notify import models as _notify  # noqa: F401
    from walletdesk.risk import models as _risk  # noqa: F401
    from walletdesk.staff import models as _staff  # noqa: F401
    from walletdesk.support import models as _support  # noqa: F401
    from walletdesk.wallet import models as _wallet  # noqa: F401
