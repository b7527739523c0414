"""One page envelope for every list the services answer.

Every list endpoint takes ``limit`` and ``cursor`` query parameters and answers a
:class:`Page`: ``{"items": [...], "next_cursor": "..." | null, "has_more": bool}``. Pass
``next_cursor`` back as ``cursor`` for the next page. The DLQ inspector's message list
issued this envelope first (its cursors are Kafka offsets and are always set, so a client
can poll for new messages); the other lists use :func:`paginate`: a keyset cursor, the sort
key of the last item returned, so a page does not shift when new items arrive.

    @router.get("/runs")
    async def list_runs(page: PageQuery) -> Page[Run]:
        return paginate(store.runs(), page, key=lambda r: (r.finished_at.isoformat(), r.id))
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

import orjson
from fastapi import Depends, HTTPException, Query
from pydantic import BaseModel, Field

T = TypeVar("T")
Key = tuple[str | int | float, ...]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    """A page of a list: its items, and where the next page starts."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page; null when this is the last page.",
    )
    has_more: bool = Field(description="More items exist now after this page.")


class InvalidCursor(ValueError):
    """The cursor was not issued by this service (or was altered)."""


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Key:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, orjson.JSONDecodeError, ValueError, UnicodeError):
        raise InvalidCursor("cursor is not one this service issued") from None
    if not isinstance(body, list) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in body
    ):
        raise InvalidCursor("cursor is not one this service issued")
    return tuple(body)


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None

    def after(self) -> Key | None:
        """The decoded cursor (None on the first page); a bad one is a 400."""
        if self.cursor is None:
            return None
        try:
            return decode_cursor(self.cursor)
        except InvalidCursor as exc:
            raise HTTPException(400, f"cursor: {exc}") from None


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 1000).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageQuery = Annotated[PageParams, Depends(page_params)]
"""``limit`` and ``cursor`` query parameters of a list route."""


def paginate(
    items: Sequence[T],
    params: PageParams,
    *,
    key: Callable[[T], Key],
    descending: bool = False,
) -> Page[T]:
    """The page of ``items`` (ordered by ``key``, ``descending`` or not) after the cursor."""
    after = params.after()
    items = sorted(items, key=key, reverse=descending)
    if after is not None:
        try:
            items = [
                item for item in items if (key(item) < after if descending else key(item) > after)
            ]
        except TypeError:  # a cursor of another list: its key compares with nothing here
            raise HTTPException(400, "cursor: not one of this list") from None
    chosen = list(items[: params.limit])
    more = len(items) > params.limit
    return Page(
        items=chosen,
        next_cursor=encode_cursor(key(chosen[-1])) if more and chosen else None,
        has_more=more,
    )
