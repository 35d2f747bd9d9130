"""The refiner on CUAD, before and after one refinement, on held-out contracts.

CUAD's gold answers play the reviewer: every value the model coded gets feedback (correct, or wrong with the gold
answer as the correction). The refiner splits the reviewed contracts (seeded, half held out), writes a proposal
for each variable with a wrong value from the other half, codes the held-out contracts again with it, and the
agreement figures (accuracy, Cohen's kappa, Krippendorff's alpha, model against the gold "reviewer") are printed
per variable, before and after, on the held-out contracts only.

The model is the embedded SmolLM2-135M (demo quality: the figures are whatever they are), or the configured
provider with --configured (CODERAI_LLM_PROVIDER=openai and a key, say). Contracts: the N shortest with gold
answers (--contracts, 10 by default), so the run takes minutes on 2 cores.

    make bench-refine            # .venv/bin/python bench/refine_cuad.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _gold_feedback(scratch: dict, gold, variables: list[tuple[str, str, str, str]]) -> tuple[int, int]:
    """Feedback from the gold answers on every value of the run: (values reviewed, values wrong)."""
    import pandas as pd
    from sqlalchemy import select

    from coderai_assets.engine.agreement import coded_alike
    from coderai_assets.engine.evaluation import canonical, file_key
    from coderai_assets.engine.variables import VariableSpec
    from coderai_assets.storage.db import tenant_session
    from coderai_assets.storage.models import Document, Extraction, Feedback

    by_key = {file_key(row["Filename"]): row for _, row in gold.iterrows()}
    specs = {name: (column, VariableSpec(name=name, type=kind)) for name, kind, _, column in variables}
    reviewed = wrong = 0
    with tenant_session(scratch["factory"], scratch["tenant_id"]) as session:
        rows = session.execute(
            select(Extraction, Document.file_name)
            .join(Document, Document.id == Extraction.document_id)
            .where(Extraction.run_id == scratch["run_id"])
        ).all()
        for value, file_name in rows:
            row = by_key.get(file_key(file_name))
            if row is None or value.variable_name not in specs:
                continue
            column, spec = specs[value.variable_name]
            answer = row[column]
            truth = None if pd.isna(answer) or not str(answer).strip() else canonical(spec, answer)
            if spec.type == "text" and truth is not None:
                truth = str(answer).strip()  # the reviewer's words, as a reviewer would write them
            alike = coded_alike(value.value, truth, spec.type)
            reviewed += 1
            wrong += not alike
            session.add(
                Feedback(
                    tenant_id=scratch["tenant_id"],
                    extraction_id=value.id,
                    run_id=value.run_id,
                    document_id=value.document_id,
                    variable_name=value.variable_name,
                    verdict="correct" if alike else "wrong",
                    corrected_value=None if alike else truth,
                    has_correction=not alike,  # gold says what it should be, empty included
                    comment="" if alike else "CUAD's gold answer",
                )
            )
    return reviewed, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contracts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configured", action="store_true", help="the configured provider, not the embedded model")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from run import CUAD_VARIABLES, cuad_contracts, embedded_model_server, materialise_documents, scratch_project

    from coderai_assets.defs.resources import LLMResource
    from coderai_assets.engine.llm import Extractor, build_chat_model
    from coderai_assets.engine.model_limits import resolve_limits
    from coderai_assets.pipeline.refine import RefineOptions, Tally, refine
    from coderai_assets.settings import Settings
    from coderai_assets.storage.db import tenant_session

    found = cuad_contracts(args.contracts)
    if found is None:
        print("== refiner on CUAD: skipped (CUAD not in CODERAI_CORPUS) ==")
        return
    gold, contracts = found
    with contextlib.nullcontext(Settings()) if args.configured else embedded_model_server() as settings:

        class Model(LLMResource):
            def extractor(self, max_output_tokens: int | None = None) -> Extractor:
                model, name = build_chat_model(settings, max_output_tokens)
                return Extractor(model, name, settings.llm_structured_method)

        variables = [{"name": n, "type": t, "description": d} for n, t, d, _ in CUAD_VARIABLES]
        documents = [(p.name, p.read_bytes()) for p in contracts]
        with scratch_project("Commercial contracts filed with the SEC (CUAD).", variables, documents) as scratch:
            started = time.perf_counter()
            success, coded_in = materialise_documents(scratch, Model())
            reviewed, wrong = _gold_feedback(scratch, gold, CUAD_VARIABLES)
            limits = resolve_limits(settings)
            options = RefineOptions(
                seed=args.seed,
                with_quotes=settings.request_quotes,
                context_tokens=limits.context_tokens,
                max_output_tokens=settings.llm_max_output_tokens,
                concurrency=4 if args.configured else 1,
            )
            tally = Tally()
            refined_at = time.perf_counter()
            result = refine(
                lambda: tenant_session(scratch["factory"], scratch["tenant_id"]),
                scratch["project_id"],
                Model().extractor(),
                options,
                tally,
            )
            refined_in = time.perf_counter() - refined_at
        model_name = Model().extractor().model_name
    print(f"== the refiner on CUAD: {len(contracts)} shortest contracts, {model_name}, {len(variables)} variables ==")
    print(
        f"coding run success {success} in {coded_in:.0f} s; gold feedback on {reviewed} values, {wrong} wrong; "
        f"written from {len(result.written_from_documents)} contracts, held out "
        f"{len(result.held_out_documents)}"
    )
    print(
        f"refiner: {tally.calls} calls, tokens {tally.input_tokens:,} in + {tally.output_tokens:,} out, "
        f"{refined_in:.0f} s; proposals for {[p.variable for p in result.proposals] or 'none'}; "
        f"skipped {[s.variable for s in result.skipped] or 'none'}"
    )
    print(f"{'variable':<16} {'refined':<8} {'n':>3}  {'accuracy':>17}  {'kappa':>17}  {'alpha':>17}")
    for score in result.held_out:
        before, after = score.before, score.after

        def pair(key: str, before=before, after=after) -> str:
            shown = [f"{v:.2f}" if isinstance(v, float) else "-" for v in (before[key], after[key])]
            return f"{shown[0]:>7} -> {shown[1]:<7}"

        print(
            f"{score.variable:<16} {str(score.refined):<8} {before['n']:>3}  {pair('accuracy')}  "
            f"{pair('kappa')}  {pair('alpha')}"
        )
    print(f"verdict: {result.verdict} ({result.reason})")
    out = ROOT / "var" / "bench" / "refine_cuad.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"model": model_name, "contracts": len(contracts), **result.model_dump(mode="json")}, indent=2, default=str
        )
    )
    print(f"report: {out} (total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    logging.getLogger("dagster").setLevel(logging.WARNING)
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    main()
