"""Benchmarks (`make bench`): figures are printed, never asserted. Medians over files; the machine is noisy.

1. Ingestion: documents per second and peak memory of the sandboxed parser, per format, on the shared corpus
   (CODERAI_CORPUS) or, without it, on the demo corpus.
2. Pipeline bookkeeping: one Dagster range run over N small documents through the three document assets with an
   instant fake model, so the figure is CoderAI's and Dagster's own cost per document, not the model's.
"""

from __future__ import annotations

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

    from coderai_assets.grounding import Aligner
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

    from coderai_assets.codebook import ProjectSpec, VariableSpec, compile_codebook
    from coderai_assets.ingest.chunk import chunk_text
    from coderai_assets.ingest.parse import parse
    from coderai_assets.llm import local_model_path
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
    size = settings.effective_chunk_chars
    chunks = [chunk_text(t, size=size, overlap=settings.chunk_overlap_chars) for t in texts]
    print(
        f"== calls and tokens per document: {n_contracts} CUAD contracts, median "
        f"{statistics.median(len(t) for t in texts):,.0f} characters, {size}-character chunks =="
    )
    print(
        f"{'variables':>9} {'strategy':<22} {'calls/doc':>10} {'input tok/doc':>14} {'output tok/doc':>15} {'ratio':>7}"
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
        together = compile_codebook(spec)
        separate = [
            compile_codebook(ProjectSpec(name="CUAD", domain_description="Commercial contracts.", variables=(v,)))
            for v in variables
        ]

        def cost(books) -> tuple[float, float, float]:
            calls = inputs = outputs = 0
            for doc_chunks in chunks:
                for chunk in doc_chunks:
                    for book in books:
                        calls += 1
                        inputs += tokens(book.system_prompt) + tokens(json.dumps(book.json_schema)) + tokens(chunk.text)
                        nulls = {v: None for v in book.json_schema["required"]}
                        outputs += tokens(json.dumps({**nulls, "quotes": {}}))
            return calls / len(chunks), inputs / len(chunks), outputs / len(chunks)

        one = cost([together])
        each = cost(separate)
        print(f"{n:>9} {'one call per chunk':<22} {one[0]:>10.1f} {one[1]:>14,.0f} {one[2]:>15,.0f} {'':>7}")
        print(
            f"{n:>9} {'one call per variable':<22} {each[0]:>10.1f} {each[1]:>14,.0f} {each[2]:>15,.0f} "
            f"{each[1] / one[1]:>6.1f}x"
        )


def bench_pipeline(n_documents: int = 50) -> None:
    os.environ.setdefault("CODERAI_LLM_PROVIDER", "factory")
    os.environ.setdefault("CODERAI_LLM_FACTORY", "tests.fakes:protest_model")
    from dagster import DagsterInstance, materialize
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from coderai_assets.cli import ensure_database, run_migrations
    from coderai_assets.db import make_engine, make_session_factory, tenant_session
    from coderai_assets.llm import Extractor
    from coderai_assets.location import build_definitions
    from coderai_assets.models import Document, Project, Run, RunKind, Tenant, Variable, VariableType
    from coderai_assets.partitions import RUN_TAG, partitions_name
    from coderai_assets.resources import DatabaseResource, LLMResource, StorageResource
    from coderai_assets.runs import create_run
    from coderai_assets.settings import get_settings
    from coderai_assets.storage import LocalFileStorage
    from tests.fakes import PROTEST_ANSWERS, ToolCallingFakeModel

    class InstantModel(LLMResource):
        def extractor(self) -> Extractor:
            return Extractor(ToolCallingFakeModel(messages=iter([]), answers=PROTEST_ANSWERS), "fake")

    settings = get_settings()
    name = f"coderai_bench_{uuid.uuid4().hex[:8]}"
    base = make_url(settings.migration_database_url)
    owner_url = base.set(database=name).render_as_string(hide_password=False)
    url = make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
    ensure_database(owner_url)
    storage_root = Path(tempfile.mkdtemp())
    try:
        run_migrations(owner_url)
        factory = make_session_factory(make_engine(url))
        storage = LocalFileStorage(storage_root)
        tenant_id = uuid.uuid4()
        with tenant_session(factory, tenant_id) as session:
            tenant = Tenant(id=tenant_id, name="bench")
            session.add(tenant)
            session.flush()
            project = Project(tenant_id=tenant.id, name="bench", domain_description="Protest reports.")
            session.add(project)
            session.flush()
            for i, (name, kind) in enumerate(
                [
                    ("city", VariableType.text),
                    ("participants", VariableType.integer),
                    ("violence", VariableType.boolean),
                ]
            ):
                session.add(Variable(tenant_id=tenant.id, project_id=project.id, name=name, type=kind, position=i))
            keys = []
            for i in range(n_documents):
                doc_id = uuid.uuid4()
                body = f"PORTO, 3 June 2023 - Report {i}: some {400 + i} dock workers went on strike.\n" * 20
                key = f"{tenant.id}/{project.id}/documents/{doc_id}/original"
                storage.write(key, body.encode())
                session.add(
                    Document(
                        id=doc_id,
                        tenant_id=tenant.id,
                        project_id=project.id,
                        file_name=f"r{i}.txt",
                        size_bytes=len(body),
                        sha256=doc_id.hex * 2,
                        storage_path=key,
                    )
                )
                keys.append(doc_id.hex)
            session.flush()
            run, _ = create_run(session, project, RunKind.full)
            ids = (project.id, tenant.id, run.id)
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(partitions_name(ids[0]), keys)
            defs = build_definitions([(ids[0], ids[1])], {})
            assets = [a for a in defs.assets if a.key.path[-1] != "export"]
            start = time.perf_counter()
            result = materialize(
                assets,
                instance=instance,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                tags={
                    RUN_TAG: str(ids[2]),
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                },
                resources={
                    "db": DatabaseResource(url=url),
                    "llm": InstantModel(),
                    "files": StorageResource(root=str(storage_root)),
                },
            )
            elapsed = time.perf_counter() - start
        with tenant_session(factory, ids[1]) as session:
            done = session.get(Run, ids[2]).documents_done
        print("== pipeline bookkeeping (one range run, instant fake model, 3 variables) ==")
        print(
            f"documents {n_documents}, done {done}, success {result.success}: {elapsed:.1f} s in all, "
            f"{elapsed / n_documents * 1000:.0f} ms per document (parse + extract + validate, 3 transactions each)"
        )
        factory.kw["bind"].dispose()
    finally:
        admin = create_engine(
            base.set(drivername="postgresql+psycopg2", database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    import logging

    logging.getLogger("dagster").setLevel(logging.WARNING)
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    bench_ingestion()
    bench_grounding()
    bench_calls()
    bench_pipeline()
