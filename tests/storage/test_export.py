"""Export writing: CSV and Excel with codebook and about sheets; no formula injection."""

import openpyxl
import pandas as pd

from coderai_assets.storage.export_writer import safe_cell, write_dataset


def test_formula_like_cells_are_neutralised():
    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    for lead in ("+", "-", "@", "\t", "\r"):
        assert safe_cell(lead + "1").startswith("'")
    assert safe_cell("Lyon") == "Lyon" and safe_cell(3) == 3
    assert safe_cell(["pay", "staffing"]) == "pay; staffing"


def test_dataset_files_hold_data_codebook_and_about(tmp_path):
    rows = [["a.txt", "=cmd|' /C calc'!A0", 3000], ["b.pdf", "Porto", None]]
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


def test_characters_xlsx_rejects_are_cleaned_and_rows_may_be_a_generator(tmp_path):
    quote = "end of page one\fstart of page two\x00"  # a PDF's form feed and a stray NUL
    rows = ([f"{i}.pdf", quote, i % 2 == 0] for i in range(3))
    count = write_dataset(
        rows, ["file_name", "quote", "flag"], [], {"rows": 3}, tmp_path / "d.csv", tmp_path / "d.xlsx"
    )
    assert count == 3
    sheet = openpyxl.load_workbook(tmp_path / "d.xlsx")["data"]
    assert sheet["B2"].value == "end of page one start of page two "
    assert [c.value for c in sheet["C"]][1:] == [True, False, True]
    # The same in the CSV: every character keeps its place, so quote offsets stay valid.
    assert pd.read_csv(tmp_path / "d.csv")["quote"][0] == "end of page one start of page two "
