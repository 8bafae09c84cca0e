"""Reports as XLSX workbooks: every report is a list of sheets of labelled columns."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Sheet:
    title: str
    columns: Sequence[tuple[str, str]]
    """(key in each row, header shown: zh-CN first, English after a slash)"""
    rows: Sequence[dict[str, Any]]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones: write the hospital-local wall time the caller chose.
        return value.replace(tzinfo=None)
    if isinstance(value, bool) or value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, list | tuple | set):
        return "; ".join(str(v) for v in value)
    return str(value)


def workbook(sheets: Sequence[Sheet]) -> bytes:
    # openpyxl (with numpy) is a sixth of the cloud's import time; loaded by the first export.
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for sheet in sheets:
        ws = book.create_sheet(sheet.title[:31])
        ws.append([header for _key, header in sheet.columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in sheet.rows:
            ws.append([_cell(row.get(key)) for key, _header in sheet.columns])
        for n, (_key, header) in enumerate(sheet.columns, start=1):
            ws.column_dimensions[get_column_letter(n)].width = max(10, min(40, len(header) * 2))
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
