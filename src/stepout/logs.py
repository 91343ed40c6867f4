"""Structured logs: one JSON object per line, carrying ids, never health data.

Each line has `time` (UTC, ISO 8601), `level`, `logger` and `event` (the message: a short name
such as `request`, or a library's own fixed sentence), then the ids known at that moment: those
bound to the current request (`bind`: request id, user, practice, route) and those a call
passes in `extra` whose names are in `FIELDS`. Anything else given in `extra` is dropped, and
an exception is logged as its type and where it was raised, never its message (a database
error's message can quote the values of a row). Request bodies, query strings and the free
text of records never reach a log line: the request log (`stepout.web.requestlog`) writes the
route's template (`/api/v1/exits/{exit_id}`), not the URL.
"""

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson

# The names a line may carry besides time, level, logger and event: ids and figures only.
FIELDS: Final = frozenset(
    {
        "request_id",
        "user",
        "practice",
        "room",
        "channel",
        "method",
        "route",
        "status",
        "duration_ms",
        "action",
        "outcome",
        "target",
        "count",
        "seq",
        "worker",
    }
)
STACK_FRAMES: Final = 12  # the innermost frames of an exception's traceback

_bound: ContextVar[dict[str, Any] | None] = ContextVar("stepout_log_fields", default=None)


@contextmanager
def request_fields(**fields: Any) -> Iterator[dict[str, Any]]:
    """Run the block with a fresh set of bound fields (one request); `bind` adds to it, from
    this task or a thread it hands work to (they share the dict)."""
    bound = {k: v for k, v in fields.items() if k in FIELDS}
    token = _bound.set(bound)
    try:
        yield bound
    finally:
        _bound.reset(token)


def bind(**fields: Any) -> None:
    """Add ids to every line logged for the rest of the current request (no-op outside one)."""
    bound = _bound.get()
    if bound is not None:
        bound.update((k, v) for k, v in fields.items() if k in FIELDS)


def bound() -> dict[str, Any]:
    """The fields bound to the current request (a copy)."""
    return dict(_bound.get() or {})


def _stack(exc: BaseException) -> list[str]:
    frames = traceback.extract_tb(exc.__traceback__)[-STACK_FRAMES:]
    return [f"{f.filename.rpartition('/')[2]}:{f.lineno} {f.name}" for f in frames]


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON with the allowed fields only."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(_bound.get() or {})
        for name in FIELDS.intersection(record.__dict__):
            line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["error"] = type(exc).__name__
            line["stack"] = _stack(exc)
        return orjson.dumps(line, default=str).decode()


def handler(stream: TextIO | None = None) -> logging.Handler:
    h = logging.StreamHandler(stream or sys.stderr)
    h.setFormatter(JsonFormatter())
    return h


def configure(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Send every logger's lines, Stepout's and the libraries', through `JsonFormatter`."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(stream))
    root.setLevel(level)


def uvicorn_config(*, access_log: bool = True, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for `stepout serve`: JSON lines on standard error for
    uvicorn's and Stepout's loggers. uvicorn's own access log stays off (it would print the
    URL); Stepout's request log (`stepout.request`) writes one line per request instead, or
    none with `access_log=False`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.{JsonFormatter.__name__}"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "stepout.request": {"level": "INFO" if access_log else "WARNING"},
        },
    }
