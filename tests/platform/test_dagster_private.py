"""Dagster's private API is used in one module only, against the version it was read in: an upgrade fails here."""

from __future__ import annotations

import inspect
import re
import subprocess
from pathlib import Path

import dagster

from coderai_assets.defs import dagster_private

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_dagster_is_the_one_the_private_uses_were_read_in():
    assert dagster.__version__ == dagster_private.WRITTEN_FOR, (
        f"Dagster is {dagster.__version__}: check each use in coderai_assets/defs/dagster_private.py against its "
        "source, then update WRITTEN_FOR"
    )
    pinned = re.search(r"^dagster==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert pinned and pinned.group(1) == dagster_private.WRITTEN_FOR
    init = inspect.getsource(dagster_private.grpc_server.DagsterApiServer.__init__)
    assert f"self.{dagster_private.MP_CONTEXT_ATTRIBUTE} =" in init
    assert dagster_private.WILL_RETRY_TAG.startswith("dagster/") and callable(dagster_private.api_cli.main)


def test_no_other_module_imports_dagsters_private_api():
    found = subprocess.run(
        ["git", "grep", "--untracked", "-l", "-E", r"(from|import) dagster\._", "--", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert found == ["coderai_assets/defs/dagster_private.py"]
