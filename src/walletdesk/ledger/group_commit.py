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


@dataclass(slots=True, eq=False)
class _Submission:
    requests: tuple[TransferRequest, ...]
    woken: threading.Event = field(default_factory=threading.Event)  # done, or handed the lead
    done: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def chain_open(self) -> bool:
        return self.requests[-1].linked


class GroupCommitter:
    """Thread-safe front door to `ledger.service.post` that shares transactions between callers.

    The leader is always the caller whose submission heads the queue, so its own requests are
    in the group it commits. Each waiting caller sleeps on its own event: a finished group wakes
    only its members and the next leader, never the whole crowd.
    """

    def __init__(self, db: Database, max_batch: int | None = None) -> None:
        self.db = db
        self.max_batch = max_batch or get_settings().group_commit_max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Submission] = deque()
        self._leading = False  # False only while the queue is empty
        # Committed so far (written by the leader only): requests / groups is the batching won.
        self.groups = 0
        self.requests = 0

    def submit(self, requests: TransferRequest | Sequence[TransferRequest]) -> list[Outcome]:
        """Post `requests` (one, or a small batch) and return their outcomes once committed."""
        batch = (requests,) if isinstance(requests, TransferRequest) else tuple(requests)
        if not batch:
            return []
        mine = _Submission(batch)
        with self._lock:
            self._queue.append(mine)
            follow, self._leading = self._leading, True
        if follow:
            self._await_turn(mine)
        if not mine.done:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.outcomes

    def queued(self) -> int:
        """Submissions waiting for a group (for metrics, and for tests to line callers up)."""
        with self._lock:
            return len(self._queue)

    def _await_turn(self, mine: _Submission) -> None:
        try:
            mine.woken.wait()
        except BaseException:
            # Interrupted (Ctrl-C in the main thread): withdraw if still waiting; a lead already
            # handed over must still be taken, or every caller behind it would wait forever.
            with self._lock:
                withdrawn = not mine.woken.is_set() and mine in self._queue
                if withdrawn:
                    self._queue.remove(mine)
            if not withdrawn and mine.woken.is_set() and not mine.done:
                self._lead()
            raise

    def _lead(self) -> None:
        """Commit one group, wake its callers, and hand the lead to the next in line."""
        with self._lock:
            group = self._take()
        try:
            self._flush(group)
        finally:
            for submission in group:
                submission.woken.set()
            with self._lock:
                if self._queue:
                    self._queue[0].woken.set()
                else:
                    self._leading = False

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
        self.groups += 1
        self.requests += len(outcomes)
        start = 0
        for submission in group:
            end = start + len(submission.requests)
            submission.outcomes = outcomes[start:end]
            submission.done = True
            start = end
