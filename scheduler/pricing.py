"""What posting costs where a platform charges per post: X's prices, kept in this one place.

X's pay-per-use API charges for each post it creates, and more for a post that
carries a URL (its pricing page at the time of writing: about $0.015 a post,
$0.20 a post with a URL). Pure: preview adds up the window it shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

X_PRICE_PER_POST = Decimal("0.015")  # USD
X_PRICE_PER_POST_WITH_URL = Decimal("0.20")  # USD
PRICES_AS_OF = "2026-01"  # when these were read off X's pricing page
BILLED = frozenset({"ok"})  # statuses of rows that would be posted (too long, held... are not)
_URL = re.compile(r"https?://\S", re.IGNORECASE)


def x_post_cost(text: str) -> Decimal:
    """Return what X charges for one post (one part of a thread) with this text."""
    return X_PRICE_PER_POST_WITH_URL if _URL.search(text) else X_PRICE_PER_POST


def x_cost(rows: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Return the estimated cost of preview rows, per X account (USD; other platforms left out).

    A row is a preview JSON object: ``platform``, ``account``, ``status`` and
    ``parts`` (or ``text``). Each part of a thread is a post of its own.
    """
    costs: dict[str, Decimal] = {}
    for row in rows:
        if row.get("platform") != "x" or row.get("status") not in BILLED:
            continue
        parts = row.get("parts") or [row.get("text") or ""]
        total = sum((x_post_cost(str(p)) for p in parts), Decimal(0))
        account = str(row.get("account"))
        costs[account] = costs.get(account, Decimal(0)) + total
    return costs
