"""Wire field types bounded by what storage holds, so a webhook answered 2xx is one the worker
can apply: text no longer than its column (read off the table, not restated), times inside the
range the database and date arithmetic take. A value outside is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator
from sqlmodel import SQLModel

# Incidents, alerts and changes are dated between these: before 1971 is a zero value or a
# clock that was never set, after 2100 a typo; both break the arithmetic of durations.
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def column_length(model: type[SQLModel], name: str) -> int:
    """The length of a VARCHAR column, from the table definition itself."""
    length = model.__table__.c[name].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int), f"{model.__name__}.{name} has no length"
    return length


def in_range(value: datetime) -> datetime:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(f"{value.isoformat()} is outside {EARLIEST.year}–{LATEST.year}")
    return value


def _in_range_or_zero(value: datetime) -> datetime:
    """Alertmanager's `endsAt` is `0001-01-01T00:00:00Z` while an alert has no end."""
    return value if value.year == 1 else in_range(value)


StoredTime = Annotated[datetime, AfterValidator(in_range)]
EndTime = Annotated[datetime, AfterValidator(_in_range_or_zero)]


def label_lengths(labels: dict[str, str], limits: dict[str, int]) -> dict[str, str]:
    """Labels whose value is stored in a column of its own must fit it."""
    for name, limit in limits.items():
        value = labels.get(name)
        if value is not None and len(value) > limit:
            raise ValueError(f"label {name!r} is {len(value)} characters; at most {limit} are "
                             "kept")
    return labels
