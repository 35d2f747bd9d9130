"""The `coderai` command: migrate, serve, start the platform, run the demo."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from coderai_assets.settings import get_settings

app = typer.Typer(
    help="CoderAI: a corpus of documents becomes a research-grade dataset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ROOT = Path(__file__).resolve().parent.parent


@app.command()
def migrate() -> None:
    """Create the databases if needed and upgrade the application schema."""
    from coderai_assets.database_setup import migrate_databases

    migrate_databases(get_settings(), typer.echo)


@app.command("local-llm")
def local_llm() -> None:
    """Serve the embedded SmolLM2 model through llama.cpp's OpenAI-compatible server (foreground)."""
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from coderai_assets.engine.llm import local_model_path
    from coderai_assets.engine.model_limits import resolve_limits

    settings = get_settings()
    debug = settings.log_level == "debug"
    server = ServerSettings(host=settings.local_llm_host, port=settings.local_llm_port)
    model = ModelSettings(
        model=str(local_model_path(settings)),
        n_ctx=resolve_limits(settings).context_tokens,
        # One thread: the machine's other core runs the pipeline (docs/decisions.md: model calls).
        n_threads=1,
        n_threads_batch=1,
        verbose=debug,  # llama.cpp's model dump (about 2,000 lines) and timings of every call
    )
    app = create_app(server_settings=server, model_settings=[model])
    uvicorn.run(app, host=server.host, port=server.port, log_level=settings.framework_log_level, access_log=debug)


@app.command()
def up() -> None:
    """Start the platform in the foreground: API, Dagster code server, webserver and daemon. Ctrl-C stops it."""
    from coderai_assets.platform import Platform

    settings = get_settings()
    migrate()
    platform = Platform(settings, ROOT / "var" / "logs")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        platform.start(foreground_logs=True)
        typer.echo(
            f"\nCoderAI is up.\n  API docs:  http://{settings.api_host}:{settings.api_port}/docs\n"
            f"  Dagster:   http://{settings.dagster_host}:{settings.dagster_port}\nCtrl-C stops everything.\n"
        )
        code = platform.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        typer.echo("stopping ...")
        platform.stop()
    raise typer.Exit(code)


@app.command("eval")
def evaluate_command(
    dataset: Path = typer.Argument(..., help="A dataset CSV exported by CoderAI"),
    gold: Path = typer.Argument(..., help="Gold CSV with one row per document (or per entity)"),
    mapping: list[str] = typer.Option(
        ..., "--map", help="dataset_column=Gold Column:type (type: text, date, category, boolean, integer, number)"
    ),
    gold_key: str = typer.Option("file_name", help="Gold column holding the document file name"),
    entity_column: str = typer.Option("", help="Dataset column naming the entity (entity-level projects)"),
    gold_entity_column: str = typer.Option("", help="Gold column naming the entity"),
    out: Path = typer.Option(Path("eval_report.json"), help="Report (JSON, and a .txt table beside it)"),
) -> None:
    """Score a dataset against gold: per-variable accuracy, exact and normalised match, entity P/R/F1."""
    import pandas as pd

    from coderai_assets.engine.evaluation import evaluate, write_report
    from coderai_assets.engine.variables import VariableSpec

    variables = {}
    for item in mapping:
        column, _, target = item.partition("=")
        gold_column, _, kind = target.rpartition(":") if ":" in target else (target, "", "text")
        if not column or not gold_column:
            raise typer.BadParameter(f"--map {item!r}: expected dataset_column=Gold Column:type")
        variables[column] = (gold_column, VariableSpec.model_validate({"name": column, "type": kind or "text"}))
    report = evaluate(
        pd.read_csv(dataset, dtype=str),
        pd.read_csv(gold, dtype=str),
        variables,
        gold_key=gold_key,
        entity_column=entity_column or None,
        gold_entity_column=gold_entity_column or None,
    )
    write_report(report, out)
    typer.echo(report.table())
    typer.echo(f"report: {out} and {out.with_suffix('.txt')}")


@app.command()
def demo(
    output: Path = typer.Option(ROOT / "demo_output", help="Folder for the demo corpus and the dataset"),
) -> None:
    """Start what is needed, code a small demo corpus through the API with the configured model, stop."""
    from coderai_assets.demo import run_demo

    raise typer.Exit(run_demo(get_settings(), output.resolve()))


if __name__ == "__main__":
    app()
