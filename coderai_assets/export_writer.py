"""Write a dataset to CSV and Excel, with a codebook sheet; cells are protected against formula injection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

# openpyxl (and spreadsheet apps reading CSV) treat these leading characters as a formula (DESIGN.md 8).
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_LEADS):
        return "'" + value
    return value


def write_dataset(
    rows: list[dict[str, Any]],
    columns: list[str],
    codebook: list[dict[str, Any]],
    about: dict[str, Any],
    csv_path: Path,
    xlsx_path: Path,
) -> None:
    """`rows` keyed by `columns`; the Excel file also holds `codebook` and an `about` sheet (run metadata)."""
    data = pd.DataFrame([{c: safe_cell(row.get(c)) for c in columns} for row in rows], columns=columns)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    data.to_csv(csv_path, index=False)
    book = pd.DataFrame([{k: safe_cell(v) for k, v in row.items()} for row in codebook])
    about_frame = pd.DataFrame([{"key": k, "value": safe_cell(v)} for k, v in about.items()])
    with pd.ExcelWriter(xlsx_path, engine="openpyxl") as writer:
        data.to_excel(writer, sheet_name="data", index=False)
        book.to_excel(writer, sheet_name="codebook", index=False)
        about_frame.to_excel(writer, sheet_name="about", index=False)
