"""The demo: a small fictional corpus of protest reports in four formats, coded end to end through the API."""

from __future__ import annotations

import html
import io
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from coderai_assets.engine.model_limits import model_label
from coderai_assets.platform import ROOT, Platform
from coderai_assets.settings import Settings

# Fictional news reports; every name and event is invented.
REPORTS = {
    "lyon_nurses": (
        "Nurses march in Lyon for higher pay",
        "LYON, 12 March 2024 - About 3,000 nurses marched through the centre of Lyon on Tuesday to demand higher "
        "pay and more staff in public hospitals. The march, organised by the Santé Ensemble union, was peaceful "
        "and police reported no arrests.",
    ),
    "porto_dockers": (
        "Dock workers strike in Porto",
        "PORTO, 3 June 2023 - Some 450 dock workers went on strike at the port of Porto on Saturday over a new "
        "shift system. Police said two workers were injured when a scuffle broke out at the main gate.",
    ),
    "gdansk_students": (
        "Students hold sit-in at Gdansk university",
        "GDANSK, 21 November 2022 - Around 200 students held a sit-in at the Gdansk Technical University library "
        "on Monday to protest against rising tuition fees. The sit-in ended peacefully in the evening.",
    ),
    "tampere_farmers": (
        "Farmers rally in Tampere",
        "TAMPERE, 8 February 2024 - Roughly 1,200 farmers gathered for a rally in the main square of Tampere on "
        "Thursday, calling for lower fuel taxes. Organisers said the rally passed without incident.",
    ),
}

VARIABLES: list[dict[str, Any]] = [
    {"name": "city", "type": "text", "description": "The city where the protest took place."},
    {"name": "event_date", "type": "date", "description": "The date of the protest."},
    {
        "name": "participants",
        "type": "integer",
        "description": "The number of participants reported.",
        "validation": {"min": 0},
    },
    {
        "name": "protest_type",
        "type": "category",
        "description": "The form of the protest.",
        "allowed_values": ["march", "strike", "sit-in", "rally", "blockade"],
    },
    {"name": "violence", "type": "boolean", "description": "Whether any violence or injuries were reported."},
]


def write_corpus(folder: Path) -> list[Path]:
    """Four reports, one per format: TXT, HTML, PDF and DOCX (the PDF and DOCX made from the same text)."""
    import docx
    import pymupdf

    folder.mkdir(parents=True, exist_ok=True)
    (lyon_t, lyon), (porto_t, porto), (gdansk_t, gdansk), (tampere_t, tampere) = REPORTS.values()
    paths = []
    txt = folder / "lyon_nurses.txt"
    txt.write_text(f"{lyon_t}\n\n{lyon}\n", encoding="utf-8")
    paths.append(txt)
    page = folder / "porto_dockers.html"
    page.write_text(
        f"<!doctype html><html><head><title>{html.escape(porto_t)}</title>"
        "<script>track()</script><style>p{}</style></head><body><nav>Home | World</nav>"
        f"<article><h1>{html.escape(porto_t)}</h1><p>{html.escape(porto)}</p></article>"
        "<footer>(c) Demo News</footer></body></html>",
        encoding="utf-8",
    )
    paths.append(page)
    pdf_path = folder / "gdansk_students.pdf"
    pdf = pymupdf.open()
    pdf_page = pdf.new_page()
    pdf_page.insert_textbox(pymupdf.Rect(72, 72, 523, 770), f"{gdansk_t}\n\n{gdansk}", fontsize=11)
    pdf.save(pdf_path)
    pdf.close()
    paths.append(pdf_path)
    docx_path = folder / "tampere_farmers.docx"
    document = docx.Document()
    document.add_heading(tampere_t, level=1)
    document.add_paragraph(tampere)
    buffer = io.BytesIO()
    document.save(buffer)
    docx_path.write_bytes(buffer.getvalue())
    paths.append(docx_path)
    return paths


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response.json()


def wait_for_run(client: httpx.Client, run_id: str, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        run = _check(client.get(f"/runs/{run_id}"))
        line = (
            f"  run {run['kind']}: {run['status']:<9} documents {run['documents_done'] + run['documents_failed']}"
            f"/{run['documents_total']} (failed {run['documents_failed']}), LLM calls {run['llm_calls']} "
            f"(+{run['cached_calls']} from cache), "
            f"tokens {run['input_tokens']}+{run['output_tokens']}"
        )
        if line != last:
            print(line, flush=True)
            last = line
        if run["status"] in ("succeeded", "failed", "canceled"):
            return run
        time.sleep(2)
    raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s")


def drive(base_url: str, output: Path) -> Path:
    """What a user does through the API; returns the folder holding the dataset."""
    files = write_corpus(output / "corpus")
    with httpx.Client(base_url=base_url, timeout=120) as client:
        # A user of their own each time: register (a workspace comes with the account), then log in.
        email, password = f"demo-{uuid.uuid4().hex[:8]}@example.org", secrets.token_urlsafe(16)
        _check(client.post("/auth/register", json={"email": email, "password": password, "display_name": "Demo"}))
        tokens = _check(client.post("/auth/login", json={"email": email, "password": password}))
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        # Kept, so the demo project can be opened afterwards in the API (and its runs found in the Dagster UI).
        output.mkdir(parents=True, exist_ok=True)
        (output / "credentials.txt").write_text(f"email: {email}\npassword: {password}\napi: {base_url}\n")
        print(f"logged in as {email}, password {password} (both in {output / 'credentials.txt'})")
        project = _check(
            client.post(
                "/projects",
                json={
                    "name": "Demo: protest events",
                    "domain_description": "Short news reports of protest events in European cities.",
                },
            )
        )
        print(f"project {project['id']}")
        for variable in VARIABLES:
            _check(client.post(f"/projects/{project['id']}/variables", json=variable))
        uploads = [("files", (p.name, p.read_bytes())) for p in files]
        documents = _check(client.post(f"/projects/{project['id']}/documents", files=uploads))
        print(f"uploaded {len(documents)} documents: {', '.join(d['document']['file_name'] for d in documents)}")

        print("sample run (2 documents):")
        sample = _check(
            client.post(f"/projects/{project['id']}/runs", json={"kind": "sample", "sample_size": 2, "seed": 1})
        )
        sample = wait_for_run(client, sample["id"])
        if sample["status"] != "succeeded":
            raise RuntimeError(f"the sample run failed: {sample['error']}")

        print("full run:")
        full = _check(client.post(f"/projects/{project['id']}/runs", json={"kind": "full"}))
        full = wait_for_run(client, full["id"])
        if full["status"] != "succeeded":
            raise RuntimeError(f"the full run failed: {full['error']}")

        dataset = output / "dataset"
        dataset.mkdir(parents=True, exist_ok=True)
        for fmt in ("csv", "xlsx"):
            response = client.get(f"/projects/{project['id']}/export", params={"format": fmt, "run_id": full["id"]})
            if response.status_code != 200:
                raise RuntimeError(f"export {fmt}: {response.status_code} {response.text}")
            (dataset / f"dataset.{fmt}").write_bytes(response.content)
    return dataset


def quality_notice(settings: Settings) -> str:
    """What the printed values are worth: the embedded 135M-parameter model shows the pipeline, not research."""
    if settings.llm_provider == "local":
        return (
            "Values from the embedded SmolLM2-135M model: DEMO QUALITY, expect wrong values. For research, set"
            " CODERAI_LLM_PROVIDER to openai or openai_compatible (see docs/configuration.md)."
        )
    return f"Values from {model_label(settings)}."


def run_demo(settings: Settings, output: Path) -> int:
    from coderai_assets.database_setup import migrate_databases

    started = time.monotonic()
    migrate_databases(settings)
    platform = Platform(settings, ROOT / "var" / "logs")
    try:
        print("starting the platform (model server, Dagster, API); logs in var/logs ...", flush=True)
        platform.start()
        dataset = drive(f"http://{settings.api_host}:{settings.api_port}/api/v1", output)
    except Exception as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        platform.stop()
    import pandas as pd

    frame = pd.read_csv(dataset / "dataset.csv")
    sheets = pd.ExcelFile(dataset / "dataset.xlsx").sheet_names
    print(quality_notice(settings))
    print(frame[["file_name", *[v["name"] for v in VARIABLES]]].to_string(index=False))
    print(
        f"\nDataset: {dataset / 'dataset.csv'} and {dataset / 'dataset.xlsx'} "
        f"({len(frame)} rows; sheets: {', '.join(sheets)}) in {time.monotonic() - started:.0f} s"
    )
    return 0
