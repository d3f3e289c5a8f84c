"""Group commit: many threads' transfers posted in one database transaction.

Each caller submits its own requests and blocks. One caller at a time is the leader: it takes
everything queued (up to `max_batch` requests), posts it with one `ledger.service.post` call in
one unit of work, hands every caller its own outcomes, and steps down; a caller still waiting
then leads the next group. Nobody sleeps to let a group fill: whatever queued up while the
previous group was committing is the next group, as in a database's own group commit.

Outcomes are the same as if each submission had been posted alone, one after another: a
submission that would change meaning when merged with others (an open linked chain, or an
external id already in the group) waits for a group of its own. If the transaction fails,
nothing in the group is committed and every caller in it gets the exception, so it may retry.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from walletdesk.config import get_settings
from walletdesk.db import Database
from walletdesk.ledger import service as ledger
from walletdesk.ledger.service import Outcome, TransferRequest


@dataclass(slots=True)
class _Submission:
    requests: tuple[TransferRequest, ...]
    done: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def chain_open(self) -> bool:
        return self.requests[-1].linked


class GroupCommitter:
    """Thread-safe front door to `ledger.service.post` that shares transactions between callers."""

    def __init__(self, db: Database, max_batch: int | None = None) -> None:
        self.db = db
        self.max_batch = max_batch or get_settings().group_commit_max_batch
        self._queue: deque[_Submission] = deque()
        self._changed = threading.Condition()
        self._leading = False

    def submit(self, requests: TransferRequest | Sequence[TransferRequest]) -> list[Outcome]:
        """Post `requests` (one, or a small batch) and return their outcomes once committed."""
        batch = (requests,) if isinstance(requests, TransferRequest) else tuple(requests)
        if not batch:
            return []
        mine = _Submission(batch)
        with self._changed:
            self._queue.append(mine)
        while True:
            group = self._wait_or_lead(mine)
            if group is None:
                if mine.error is not None:
                    raise mine.error
                return mine.outcomes
            try:
                self._flush(group)
            finally:
                with self._changed:
                    self._leading = False
                    self._changed.notify_all()

    def queued(self) -> int:
        """Submissions waiting for a group (for metrics, and for tests to line callers up)."""
        with self._changed:
            return len(self._queue)

    def _wait_or_lead(self, mine: _Submission) -> list[_Submission] | None:
        """None once `mine` is done; otherwise the group this caller now leads."""
        with self._changed:
            while self._leading and not mine.done:
                self._changed.wait()
            if mine.done:
                return None
            self._leading = True
            return self._take()

    def _take(self) -> list[_Submission]:
        """The longest queue prefix that fits in one post() with unchanged meaning."""
        group: list[_Submission] = []
        ids: set[str] = set()
        size = 0
        while self._queue:
            head = self._queue[0]
            head_ids = {r.external_id for r in head.requests}
            if group and (
                size + len(head.requests) > self.max_batch
                or head.chain_open  # merged, it would link into the next caller's requests
                or not ids.isdisjoint(head_ids)  # a repeated id is a duplicate within one batch
            ):
                break
            group.append(self._queue.popleft())
            ids |= head_ids
            size += len(head.requests)
            if head.chain_open:
                break
        return group

    def _flush(self, group: list[_Submission]) -> None:
        """Post the group in one transaction; every submission ends done, with outcomes or error."""
        try:
            with self.db.unit_of_work() as session:
                outcomes = ledger.post(session, [r for s in group for r in s.requests])
        except BaseException as error:  # every caller must learn of it, whatever it is
            for submission in group:
                submission.error = error
                submission.done = True
            return
        start = 0
        for submission in group:
            end = start + len(submission.requests)
            submission.outcomes = outcomes[start:end]
            submission.done = True
            start = end
