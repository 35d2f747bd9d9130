"""End to end as a user: the API on a real Dagster (code server, webserver, daemon) and PostgreSQL; the model is
the tests' fake, loaded by the run workers through CODERAI_LLM_FACTORY."""

from __future__ import annotations

import pandas as pd
import psutil
import pytest

from coderai_assets.demo import drive
from coderai_assets.platform import Platform
from tests.fakes import PROTEST_ANSWERS


@pytest.fixture
def platform(database, settings, tmp_path):
    platform = Platform(settings, tmp_path / "logs")
    try:
        platform.start(with_api=True, timeout=240)
        yield platform
    finally:
        platform.stop()


def test_sample_then_full_run_through_api_and_dagster(platform, settings, tmp_path):
    dataset = drive(f"http://{settings.api_host}:{settings.api_port}/api/v1", tmp_path / "out")
    frame = pd.read_csv(dataset / "dataset.csv").set_index("file_name")
    assert sorted(frame.index) == [
        "gdansk_students.pdf",
        "lyon_nurses.txt",
        "porto_dockers.html",
        "tampere_farmers.docx",
    ]
    assert set(frame["document_status"]) == {"done"}
    assert frame.loc["porto_dockers.html", "participants"] == 450
    assert frame.loc["porto_dockers.html", "protest_type"] == "strike"
    assert frame.loc["lyon_nurses.txt", "event_date"] == "2024-03-12"
    assert frame.loc["tampere_farmers.docx", "violence"] == False  # noqa: E712 - "no" coerced to a boolean
    assert frame.loc["lyon_nurses.txt", "participants__quote"] == "About 3,000 nurses"
    assert frame["prompt_version"].nunique() == 1 and frame["model"].iloc[0] == "ToolCallingFakeModel"
    assert len(PROTEST_ANSWERS) == len(frame)
    sheets = pd.read_excel(dataset / "dataset.xlsx", sheet_name=None)
    assert list(sheets) == ["data", "codebook", "about"]
    assert list(sheets["codebook"]["variable"]) == [
        "city",
        "event_date",
        "participants",
        "protest_type",
        "violence",
    ]


def test_run_workers_fork_from_a_warm_process(platform):
    """The code server starts run workers from a forkserver that imported Dagster and the definitions once
    (coderai_assets/defs/code_server.py), not with a fresh interpreter each (about 3 s of CPU a run)."""
    (server,) = [s for s in platform.services if s.name == "dagster-code-server"]
    assert server.process is not None
    children = [" ".join(c.cmdline()) for c in psutil.Process(server.process.pid).children(recursive=True)]
    forkservers = [c for c in children if "multiprocessing.forkserver" in c]
    assert len(forkservers) == 1 and "coderai_assets.definitions" in forkservers[0]
