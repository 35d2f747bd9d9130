"""Export writing: CSV and Excel with codebook and about sheets; no formula injection."""

import openpyxl
import pandas as pd

from coderai_assets.export_writer import safe_cell, write_dataset


def test_formula_like_cells_are_neutralised():
    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    for lead in ("+", "-", "@", "\t", "\r"):
        assert safe_cell(lead + "1").startswith("'")
    assert safe_cell("Lyon") == "Lyon" and safe_cell(3) == 3
    assert safe_cell(["pay", "staffing"]) == "pay; staffing"


def test_dataset_files_hold_data_codebook_and_about(tmp_path):
    rows = [
        {"file_name": "a.txt", "city": "=cmd|' /C calc'!A0", "participants": 3000},
        {"file_name": "b.pdf", "city": "Porto", "participants": None},
    ]
    codebook = [{"variable": "city", "type": "text"}, {"variable": "participants", "type": "integer"}]
    write_dataset(
        rows,
        ["file_name", "city", "participants"],
        codebook,
        {"run_id": "r1"},
        tmp_path / "d.csv",
        tmp_path / "d.xlsx",
    )
    frame = pd.read_csv(tmp_path / "d.csv")
    assert list(frame.columns) == ["file_name", "city", "participants"] and len(frame) == 2
    assert frame.loc[0, "city"].startswith("'=")
    book = openpyxl.load_workbook(tmp_path / "d.xlsx")
    assert book.sheetnames == ["data", "codebook", "about"]
    assert book["data"]["B2"].data_type == "s"  # a string, not a formula
    assert [c.value for c in book["codebook"]["A"]][1:] == ["city", "participants"]
