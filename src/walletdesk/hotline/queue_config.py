"""The queue configuration: data in hotline/queues.yaml, or an operator's own file
(WALLETDESK_HOTLINE_QUEUES_PATH). A wrong file stops the load with a message naming the queue
and the setting, so that a typo fails at start-up rather than strands calls.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from walletdesk.config import get_settings
from walletdesk.hotline import queue_errors as _queue_errors  # noqa: F401  (registers the codes)
from walletdesk.hotline.routing import STRATEGIES
from walletdesk.kit.errors import DomainError
from walletdesk.kit.yamlfile import load_yaml


class QueueConfigError(ValueError):
    """The queue configuration cannot be used; the message says where and why."""


class QueueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    skills: tuple[str, ...] = ()
    priority: int = Field(default=0, ge=0, le=100)
    strategy: str = "leastrecent"
    offer_timeout_seconds: int = Field(default=20, ge=5, le=300)
    wrap_up_seconds: int = Field(default=30, ge=0, le=3600)
    service_level_seconds: int = Field(default=20, ge=1, le=3600)
    handle_seconds: int = Field(default=240, ge=1, le=7200)


def load_queues(path: Path | None = None) -> dict[str, QueueConfig]:
    """Read and validate a queues file; None reads the one shipped with walletdesk."""
    data, source = load_yaml(
        path,
        package="walletdesk.hotline",
        name="queues.yaml",
        what="the queues",
        error=QueueConfigError,
    )
    return parse_queues(data, source=source)


def parse_queues(data: object, *, source: str = "queues") -> dict[str, QueueConfig]:
    if not isinstance(data, dict) or not isinstance(data.get("queues"), dict) or not data["queues"]:
        raise QueueConfigError(f"{source}: expected a mapping 'queues' of at least one queue")
    queues: dict[str, QueueConfig] = {}
    for name, settings in data["queues"].items():
        if not isinstance(settings, dict):
            raise QueueConfigError(f"{source}: queue {name!r}: expected a mapping of settings")
        try:
            queue = QueueConfig(name=str(name), **settings)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise QueueConfigError(f"{source}: queue {name!r}: {where}: {problem['msg']}") from None
        if queue.strategy not in STRATEGIES:
            raise QueueConfigError(
                f"{source}: queue {name!r}: strategy: one of {', '.join(STRATEGIES)}"
            )
        queues[queue.name] = queue
    return queues


@lru_cache
def _configured(path: Path | None) -> dict[str, QueueConfig]:
    return load_queues(path)


def all_queues() -> dict[str, QueueConfig]:
    return _configured(get_settings().hotline_queues_path)


def queue_config(name: str) -> QueueConfig:
    try:
        return all_queues()[name]
    except KeyError:
        raise DomainError("queue_unknown", queue=name) from None
