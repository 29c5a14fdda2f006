"""Regular expressions compiled on first use: ``re`` costs as much to import as
a container costs to start, and most specs need none of them."""

from __future__ import annotations

import functools

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

__all__ = ["regex"]


@functools.cache
def regex(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """``re.compile(pattern)``, once per pattern."""
    import re

    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
