"""CSV that a spreadsheet opens as data (OWASP "CSV injection").

Excel, LibreOffice and Google Sheets read a cell that starts with = + - @, a tab or a carriage
return as a formula, so a requester-chosen value such as a user name could run in the spreadsheet
of whoever opens the file. `safe_cell` gives such a cell a leading single quote, which spreadsheets
show as text; `csv_row` keeps a carriage return inside its cell, where a reader would otherwise
start a new row (and a new, unneutralised first cell) at it.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value, with a leading ' if a spreadsheet would evaluate it; non-text values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_row(cells: Sequence[Any]) -> str:
    """One CSV line, ending in "\\n", quoted only where needed.

    Python's csv module with "\\n" line ends quotes a cell holding "\\n" but not one holding "\\r",
    which readers take for a line end too: a row with one has every cell quoted.
    """
    out = io.StringIO()
    split = any(isinstance(c, str) and "\r" in c for c in cells)
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL if split else csv.QUOTE_MINIMAL).writerow(cells)
    return out.getvalue()
