"""Benchmarks (`make bench`): figures are printed, never asserted. Medians over files; the machine is noisy.

1. Ingestion: documents per second and peak memory of the sandboxed parser, per format, on the shared corpus
   (CODERAI_CORPUS) or, without it, on the demo corpus.
2. Pipeline bookkeeping: one Dagster range run over N small documents through the three document assets with an
   instant fake model, so the figure is CoderAI's and Dagster's own cost per document, not the model's.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _corpus_files() -> dict[str, list[Path]]:
    corpus = Path(os.environ.get("CODERAI_CORPUS", ROOT.parent / "shared" / "corpus"))
    if not corpus.is_dir():
        from coderai_assets.demo import write_corpus

        files = write_corpus(Path(tempfile.mkdtemp()) / "demo")
        return {p.suffix[1:]: [p] for p in files}
    return {
        "pdf": sorted((corpus / "pdf" / "real").glob("*.pdf"))[:25],
        "docx": sorted((corpus / "docx" / "real").glob("*.docx"))[:25],
        "html": sorted((corpus / "html" / "readability").glob("*/source.html"))[:25],
        "txt": sorted((corpus / "txt").rglob("*.txt"))[:25],
    }


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_ingestion() -> None:
    from coderai_assets.ingest.sandbox import ParseLimits, ParseWorker

    print("== ingestion (sandboxed child process, one worker reused) ==")
    print(f"{'format':<6} {'files':>5} {'ok':>4} {'median ms':>10} {'MB/s':>7} {'chars/s':>11} {'peak RSS MB':>12}")
    for fmt, files in _corpus_files().items():
        if not files:
            continue
        with ParseWorker(ParseLimits()) as worker:
            worker.parse(files[0].read_bytes())  # warm the worker's imports
            times, ok, size, chars = [], 0, 0, 0
            for path in files:
                data = path.read_bytes()
                start = time.perf_counter()
                outcome = worker.parse(data)
                times.append(time.perf_counter() - start)
                size += len(data)
                if outcome.ok and outcome.parsed:
                    ok += 1
                    chars += len(outcome.parsed.text)
            peak = _peak_rss_mb(worker._process.pid) if worker._process else float("nan")
        total = sum(times)
        print(
            f"{fmt:<6} {len(files):>5} {ok:>4} {statistics.median(times) * 1000:>10.1f} "
            f"{size / total / 1e6:>7.2f} {chars / total:>11,.0f} {peak:>12.0f}"
        )


def bench_grounding(n_quotes: int = 1000) -> None:
    """Offsets for 1,000 quotes in War and Peace (3 MB): 50% verbatim, 25% case and line breaks changed,
    15% with a typo, 10% invented (must not be found)."""
    import random

    from coderai_assets.engine.grounding import Aligner
    from coderai_assets.ingest.parse import parse

    corpus = Path(os.environ.get("CODERAI_CORPUS", ROOT.parent / "shared" / "corpus"))
    path = corpus / "txt" / "large" / "war_and_peace_pg2600.txt"
    if not path.exists():
        print("== grounding: skipped (War and Peace not in CODERAI_CORPUS) ==")
        return
    text = parse(path.read_bytes(), "txt").text
    rng = random.Random(7)
    cases = []
    for i in range(n_quotes):
        start = rng.randrange(0, len(text) - 300)
        quote = text[start : start + rng.randrange(30, 200)]
        kind = "verbatim" if i % 20 < 10 else "case/space" if i % 20 < 15 else "typo" if i % 20 < 18 else "invented"
        if kind == "case/space":
            quote = " ".join(quote.lower().split())
        elif kind == "typo":
            k = rng.randrange(5, len(quote) - 5)
            quote = quote[:k] + ("x" if quote[k] != "x" else "y") + quote[k + 1 :]
        elif kind == "invented":
            quote = "The telephone rang in Napoleon's spaceship " + str(i)
        hint = (max(0, start - 2000), min(len(text), start + 2000))
        cases.append((kind, quote, hint))
    began = time.perf_counter()
    aligner = Aligner(text)
    prepared = time.perf_counter() - began
    found: dict[str, list[str]] = {}
    timings = []
    for kind, quote, hint in cases:
        t = time.perf_counter()
        found.setdefault(kind, []).append(aligner.align(quote, hint).status)
        timings.append(time.perf_counter() - t)
    total = time.perf_counter() - began
    unhinted = time.perf_counter()
    for _kind, quote, _ in cases[:200]:
        aligner.align(quote)
    unhinted = (time.perf_counter() - unhinted) / 200
    print(f"== grounding: {n_quotes} quotes in {len(text) / 1e6:.1f} M characters ==")
    print(
        f"index {prepared:.2f} s; all quotes {total:.2f} s; median {statistics.median(timings) * 1e3:.2f} ms a quote "
        f"with the chunk as hint, {unhinted * 1e3:.1f} ms without"
    )
    for kind, statuses in found.items():
        share = {s: statuses.count(s) / len(statuses) for s in ("exact", "fuzzy", "not_found")}
        print(
            f"  {kind:<10} n={len(statuses):<4} exact {share['exact']:.0%}  fuzzy {share['fuzzy']:.0%}  "
            f"not found {share['not_found']:.0%}"
        )


def bench_calls(counts=(5, 20, 50), n_contracts: int = 5) -> None:
    """LLM calls and input tokens per document: all variables of a chunk in one call, against one call per
    variable, on CUAD contracts with CUAD's own category descriptions as the codebook. Tokens are counted with the
    embedded model's tokenizer; output tokens are those of an all-null answer (the least a model must write)."""
    import csv
    import json

    import llama_cpp
    from pydantic import SecretStr

    from coderai_assets.engine import budget
    from coderai_assets.engine.codebook import ProjectSpec, compile_codebook
    from coderai_assets.engine.llm import local_model_path
    from coderai_assets.engine.model_limits import resolve_limits
    from coderai_assets.engine.variables import VariableSpec
    from coderai_assets.ingest.chunk import chunk_text
    from coderai_assets.ingest.parse import parse
    from coderai_assets.settings import get_settings

    corpus = Path(os.environ.get("CODERAI_CORPUS", ROOT.parent / "shared" / "corpus")) / "labelled" / "cuad_v1"
    if not corpus.is_dir():
        print("== calls per document: skipped (CUAD not in CODERAI_CORPUS) ==")
        return
    settings = get_settings()
    vocab = llama_cpp.Llama(str(local_model_path(settings)), vocab_only=True, verbose=False)

    def tokens(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False, special=False))

    with (corpus / "category_descriptions.csv").open(encoding="utf-8-sig") as handle:
        categories = [
            (
                r["Category (incl. context and answer)"].split(":", 1)[1].strip(),
                r["Description"].split(":", 1)[1].strip(),
            )
            for r in csv.DictReader(handle)
        ]
    contracts = sorted((corpus / "full_contract_txt").glob("*.txt"))[:n_contracts]
    texts = [parse(p.read_bytes(), "txt").text for p in contracts]
    # What a user with an OpenAI key and no other setting gets (the context follows the model), unless set.
    openai = settings.model_copy(
        update={
            "llm_provider": "openai",
            "llm_api_key": SecretStr("unused"),
            "llm_model": "",
            "llm_context_tokens": None,
        }
    )
    context = settings.llm_context_tokens or resolve_limits(openai).context_tokens
    print(
        f"== calls and tokens per document: {n_contracts} CUAD contracts, median "
        f"{statistics.median(len(t) for t in texts):,.0f} characters, a {context}-token context; chunk size and "
        f"variable groups as the engine chooses them =="
    )
    print(
        f"{'variables':>9} {'strategy':<24} {'chunk chars':>11} {'calls/doc':>10} {'input tok/doc':>14} "
        f"{'output tok/doc':>15} {'ratio':>7}"
    )
    for n in counts:
        variables = tuple(
            VariableSpec(
                name=re.sub(r"\W+", "_", name.lower()).strip("_")[:50] + (f"_{i}" if i >= len(categories) else ""),
                type="text",
                description=description,
            )
            for i, (name, description) in enumerate((categories * 2)[:n])
        )
        spec = ProjectSpec(name="CUAD", domain_description="Commercial contracts.", variables=variables)
        limits = {"context_tokens": context, "max_output_tokens": settings.llm_max_output_tokens}
        size = budget.chunk_chars_for(spec, with_quotes=True, **limits)
        groups = budget.variable_groups(spec, with_quotes=True, **limits)
        together = [compile_codebook(spec.model_copy(update={"variables": g})) for g in groups]
        separate = [compile_codebook(spec.model_copy(update={"variables": (v,)})) for v in variables]
        chunks = [chunk_text(t, size=size, overlap=settings.chunk_overlap_chars) for t in texts]

        def cost(books, chunks=chunks) -> tuple[float, float, float]:
            calls = inputs = outputs = 0
            for doc_chunks in chunks:
                for chunk in doc_chunks:
                    for book in books:
                        calls += 1
                        inputs += tokens(book.system_prompt) + tokens(json.dumps(book.json_schema)) + tokens(chunk.text)
                        nulls = {v: None for v in book.json_schema["required"]}
                        outputs += tokens(json.dumps({**nulls, "quotes": {}, "confidence": {}}))
            return calls / len(chunks), inputs / len(chunks), outputs / len(chunks)

        one = cost(together)
        each = cost(separate)
        label = "one call per chunk" if len(groups) == 1 else f"{len(groups)} groups per chunk"
        print(f"{n:>9} {label:<24} {size:>11,} {one[0]:>10.1f} {one[1]:>14,.0f} {one[2]:>15,.0f} {'':>7}")
        print(
            f"{n:>9} {'one call per variable':<24} {size:>11,} {each[0]:>10.1f} {each[1]:>14,.0f} {each[2]:>15,.0f} "
            f"{each[1] / one[1]:>6.1f}x"
        )


@contextlib.contextmanager
def scratch_project(domain: str, variables: list[dict], documents: list[tuple[str, bytes]]):
    """A throw-away database with one tenant, one project, its variables and documents, and a full run over
    them; yields what materialising needs, then drops the database."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from coderai_assets.database_setup import ensure_database, run_migrations
    from coderai_assets.domain.runs import create_run
    from coderai_assets.engine.variables import VariableSpec
    from coderai_assets.settings import get_settings
    from coderai_assets.storage.db import make_engine, make_session_factory, tenant_session
    from coderai_assets.storage.files import LocalFileStorage
    from coderai_assets.storage.models import Document, Project, RunKind, Tenant, Variable
    from coderai_assets.storage.partition_keys import document_key

    settings = get_settings()
    name = f"coderai_bench_{uuid.uuid4().hex[:8]}"
    base = make_url(settings.migration_database_url)
    owner_url = base.set(database=name).render_as_string(hide_password=False)
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    ensure_database(owner_url)
    storage_root = Path(tempfile.mkdtemp())
    engine = None
    try:
        run_migrations(owner_url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        storage = LocalFileStorage(storage_root)
        tenant_id = uuid.uuid4()
        with tenant_session(factory, tenant_id) as session:
            session.add(Tenant(id=tenant_id, name="bench"))
            session.flush()
            project = Project(tenant_id=tenant_id, name="bench", domain_description=domain)
            session.add(project)
            session.flush()
            for i, variable in enumerate(variables):
                session.add(
                    Variable.of(VariableSpec(**variable), tenant_id=tenant_id, project_id=project.id, position=i)
                )
            keys = []
            for file_name, data in documents:
                doc_id = uuid.uuid4()
                key = f"{tenant_id}/{project.id}/documents/{doc_id}/original"
                storage.write(key, data)
                session.add(
                    Document(
                        id=doc_id,
                        tenant_id=tenant_id,
                        project_id=project.id,
                        file_name=file_name,
                        size_bytes=len(data),
                        sha256=doc_id.hex * 2,
                        storage_path=key,
                    )
                )
                keys.append(document_key(project.id, doc_id))
            session.flush()
            run, _ = create_run(session, project, RunKind.full, with_quotes=settings.request_quotes)
            ids = {"project_id": project.id, "tenant_id": tenant_id, "run_id": run.id}
        yield {"factory": factory, "url": url, "storage_root": storage_root, "keys": keys, **ids}
    finally:
        if engine is not None:
            engine.dispose()
        admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def materialise_documents(scratch: dict, llm) -> tuple[bool, float]:
    """One Dagster range run over every document of the scratch project; (success, seconds)."""
    from dagster import DagsterInstance, materialize

    from coderai_assets.definitions import build_definitions
    from coderai_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, RUN_TAG, WORKSPACE_TAG, Shard
    from coderai_assets.defs.resources import DatabaseResource, StorageResource
    from coderai_assets.settings import get_settings

    keys = scratch["keys"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(Shard(0, 1).partitions_name, keys)
        defs = build_definitions(get_settings(), {})
        assets = [a for a in defs.assets if any(k.path[-1] == "validated_rows" for k in a.keys)]
        start = time.perf_counter()
        result = materialize(
            assets,
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={
                RUN_TAG: str(scratch["run_id"]),
                WORKSPACE_TAG: str(scratch["tenant_id"]),
                RANGE_START_TAG: keys[0],
                RANGE_END_TAG: keys[-1],
            },
            resources={
                "db": DatabaseResource(url=scratch["url"]),
                "llm": llm,
                "files": StorageResource(root=str(scratch["storage_root"])),
            },
        )
        return result.success, time.perf_counter() - start


def bench_pipeline(n_documents: int = 50) -> None:
    from coderai_assets.defs.resources import LLMResource
    from coderai_assets.engine.llm import Extractor
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.models import Run
    from tests.fakes import PROTEST_ANSWERS, ToolCallingFakeModel

    class InstantModel(LLMResource):
        def extractor(self, max_output_tokens: int | None = None) -> Extractor:
            return Extractor(ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS), "fake")

    variables = [
        {"name": "city", "type": "text"},
        {"name": "participants", "type": "integer"},
        {"name": "violence", "type": "boolean"},
    ]
    documents = [
        (f"r{i}.txt", (f"PORTO, 3 June 2023 - Report {i}: some {400 + i} dock workers went on strike.\n" * 20).encode())
        for i in range(n_documents)
    ]
    with scratch_project("Protest reports.", variables, documents) as scratch:
        success, elapsed = materialise_documents(scratch, InstantModel())
        with tenant_session(scratch["factory"], scratch["tenant_id"]) as session:
            done = session.get(Run, scratch["run_id"]).documents_done
    print("== pipeline bookkeeping (one range run, instant fake model, 3 variables) ==")
    print(
        f"documents {n_documents}, done {done}, success {success}: {elapsed:.1f} s in all, "
        f"{elapsed / n_documents * 1000:.0f} ms per document (parse + extract + validate, 3 transactions each), "
        f"{n_documents / elapsed:.1f} documents/s"
    )


def bench_export(n_rows: int = 10_000, n_variables: int = 50) -> None:
    """The export of a run of `n_rows` documents x `n_variables` variables, streamed from the database, timed in a
    process of its own so its peak memory is the export's; and the XLSX writer alone against XlsxWriter's."""
    import subprocess

    from sqlalchemy import text

    from coderai_assets.storage.db import tenant_session

    variables = [{"name": f"v{i:02d}", "type": "text", "description": f"variable {i}"} for i in range(n_variables)]
    with scratch_project("Export benchmark.", variables, [("seed.txt", b"seed")]) as scratch:
        params = {"t": scratch["tenant_id"], "p": scratch["project_id"], "r": scratch["run_id"], "n": n_rows}
        start = time.perf_counter()
        with tenant_session(scratch["factory"], scratch["tenant_id"]) as session:
            session.execute(
                text(
                    "insert into documents (id, tenant_id, project_id, file_name, size_bytes, sha256, storage_path, "
                    "status) select gen_random_uuid(), :t, :p, 'report ' || g || '.pdf', 1000, "
                    "md5(g::text) || md5(g::text), 'none', 'done' from generate_series(1, :n) g"
                ),
                params,
            )
            session.execute(text("delete from run_documents where run_id = :r"), params)
            session.execute(
                text(
                    "insert into run_documents (run_id, document_id, tenant_id, status, llm_calls, input_tokens, "
                    "output_tokens) select :r, d.id, :t, 'done', 1, 1000, 100 from documents d "
                    "where d.project_id = :p and d.storage_path = 'none'"
                ),
                params,
            )
            session.execute(
                text(
                    "insert into extractions (id, tenant_id, run_id, document_id, entity_index, variable_id, "
                    "variable_name, raw_value, value, status, confidence, quote, char_start, char_end, alignment, "
                    "chunk_index, model) select gen_random_uuid(), :t, :r, d.id, 0, v.id, v.name, "
                    "to_jsonb(d.file_name || ' ' || v.name), to_jsonb(d.file_name || ' ' || v.name), 'ok', 0.9, "
                    "'a supporting quote for ' || v.name || chr(12) || 'across a page break', 10, 60, 'exact', 0, "
                    "'simulator' from documents d "
                    "cross join variables v where d.project_id = :p and d.storage_path = 'none'"
                ),
                params,
            )
        seeded = time.perf_counter() - start
        code = (
            "import resource, sys, time, uuid\n"
            "from pathlib import Path\n"
            "from coderai_assets.domain.dataset import write_export\n"
            "from coderai_assets.storage.db import make_engine, make_session_factory, tenant_session\n"
            "from coderai_assets.storage.models import Project, Run\n"
            "from coderai_assets.storage.files import LocalFileStorage\n"
            "url, tenant, project, run, root = sys.argv[1:6]\n"
            "factory = make_session_factory(make_engine(url))\n"
            "t = time.perf_counter()\n"
            "with tenant_session(factory, uuid.UUID(tenant)) as s:\n"
            "    e = write_export(s, LocalFileStorage(Path(root)), s.get(Project, uuid.UUID(project)), "
            "s.get(Run, uuid.UUID(run)), None)\n"
            "print(e.row_count, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
        )
        argv = [scratch["url"], scratch["tenant_id"], scratch["project_id"], scratch["run_id"], scratch["storage_root"]]
        out = subprocess.run(
            [sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True, check=True, cwd=ROOT
        )
        rows, seconds, peak = out.stdout.split()
    from coderai_assets.domain.dataset import FINAL_SUFFIXES, META_COLUMNS, PROVENANCE_SUFFIXES

    cells = int(rows) * (len(META_COLUMNS) + n_variables * (1 + len(FINAL_SUFFIXES) + len(PROVENANCE_SUFFIXES)))
    print(f"== export: {rows} rows x {n_variables} variables ({cells:,} cells), CSV + XLSX, from the database ==")
    print(
        f"{float(seconds):.1f} s ({int(rows) / float(seconds):,.0f} rows/s), "
        f"export process peak RSS {float(peak):.0f} MB"
    )
    print(f"(seeding {n_rows * n_variables:,} values took {seeded:.1f} s)")


CUAD_VARIABLES = [
    ("document_name", "text", "The name of the contract", "Document Name-Answer"),
    ("parties", "text", "The two or more parties who signed the contract", "Parties-Answer"),
    ("agreement_date", "date", "The date of the contract", "Agreement Date-Answer"),
    ("effective_date", "date", "The date when the contract is effective", "Effective Date-Answer"),
    (
        "governing_law",
        "text",
        "Which state or country's law governs the interpretation of the contract",
        "Governing Law-Answer",
    ),
    (
        "non_compete",
        "boolean",
        "Is there a restriction on a party's ability to compete with the counterparty?",
        "Non-Compete-Answer",
    ),
    ("exclusivity", "boolean", "Is there an exclusive dealing commitment with the counterparty?", "Exclusivity-Answer"),
]


def cuad_contracts(n_contracts: int):
    """(gold answers, the n shortest CUAD contracts that have them), or None when the corpus is absent."""
    import pandas as pd

    from coderai_assets.engine.evaluation import file_key

    corpus = Path(os.environ.get("CODERAI_CORPUS", ROOT.parent / "shared" / "corpus")) / "labelled" / "cuad_v1"
    if not corpus.is_dir():
        return None
    gold = pd.read_csv(corpus / "master_clauses.csv", dtype=str)
    known = {file_key(n) for n in gold["Filename"]}
    contracts = sorted(
        (p for p in (corpus / "full_contract_txt").glob("*.txt") if file_key(p.name) in known),
        key=lambda p: p.stat().st_size,
    )[:n_contracts]
    return gold, contracts


@contextlib.contextmanager
def embedded_model_server():
    """The embedded model's server (`coderai local-llm`) on a port of its own; yields its settings."""
    import subprocess

    import httpx

    from coderai_assets.settings import Settings

    port = int(os.environ.get("CODERAI_BENCH_LLM_PORT", "18766"))
    server = subprocess.Popen(
        [sys.executable, "-m", "coderai_assets.cli", "local-llm"],
        env={**os.environ, "CODERAI_LOCAL_LLM_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield Settings(llm_provider="local", local_llm_port=port, llm_quotes=None)
    finally:
        server.terminate()
        server.wait(20)


def bench_cuad_eval(n_contracts: int = 20) -> None:
    """`coderai eval` on CUAD contracts coded by the embedded model, per variable (figures whatever they are).
    The 20 shortest contracts, so the run takes minutes on 2 cores rather than hours."""
    import pandas as pd

    from coderai_assets.defs.resources import LLMResource
    from coderai_assets.domain.dataset import build_rows
    from coderai_assets.engine.evaluation import evaluate, write_report
    from coderai_assets.engine.llm import Extractor, build_chat_model
    from coderai_assets.engine.variables import VariableSpec
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.models import Project, Run

    found = cuad_contracts(n_contracts)
    if found is None:
        print("== CUAD evaluation: skipped (CUAD not in CODERAI_CORPUS) ==")
        return
    gold, contracts = found
    with embedded_model_server() as local:

        class EmbeddedModel(LLMResource):
            def extractor(self, max_output_tokens: int | None = None) -> Extractor:
                model, name = build_chat_model(local, max_output_tokens)
                return Extractor(model, name)

        variables = [{"name": n, "type": t, "description": d} for n, t, d, _ in CUAD_VARIABLES]
        documents = [(p.name, p.read_bytes()) for p in contracts]
        with scratch_project("Commercial contracts filed with the SEC (CUAD).", variables, documents) as scratch:
            success, elapsed = materialise_documents(scratch, EmbeddedModel())
            with tenant_session(scratch["factory"], scratch["tenant_id"]) as session:
                run = session.get(Run, scratch["run_id"])
                columns, rows = build_rows(session, session.get(Project, scratch["project_id"]), run)
                calls, tokens_in, tokens_out = run.llm_calls, run.input_tokens, run.output_tokens
                failed = run.documents_failed
    dataset = pd.DataFrame(rows, columns=columns)
    mapping = {n: (g, VariableSpec(name=n, type=t)) for n, t, _, g in CUAD_VARIABLES}
    report = evaluate(dataset, gold, mapping, gold_key="Filename")
    out = ROOT / "var" / "bench" / "cuad_eval.json"
    write_report(report, out)
    print(
        f"== CUAD evaluation: {len(contracts)} shortest contracts, embedded SmolLM2-135M, {len(mapping)} variables =="
    )
    print(
        f"run success {success}, {elapsed:.0f} s, {calls} LLM calls, tokens {tokens_in:,} in + {tokens_out:,} out, "
        f"{failed} documents failed"
    )
    print(report.table())
    print(f"report: {out}")


if __name__ == "__main__":
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    bench_ingestion()
    bench_grounding()
    bench_calls()
    bench_pipeline()
    bench_export()
    bench_cuad_eval()
