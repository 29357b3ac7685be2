"""``volsurf ingest`` (chain files -> Parquet store) and ``volsurf query`` (SQL over a store)."""

from __future__ import annotations

import click

from volsurf.cli.common import as_of_option, emit, format_option, output_option

OUTCOME_COLUMNS = ["source_file", "status", "snapshot_id", "underlying", "trade_date", "reason", "seconds"]


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@click.option("--store", "store_url", required=True,
              help="The store: a directory (created when absent) or an fsspec URL (s3://..., gcs://...).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: a process pool; dask: Dask distributed (a LocalCluster, or --scheduler).")
@click.option("--jobs", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: the CPU count; with --scheduler: the cluster's workers).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run on an existing Dask cluster (implies --engine dask).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr: tasks (files, or parts of a big file) done, snapshots added/present/failed, "
                   "rate (default: on a TTY).")
@format_option()
@output_option()
@as_of_option()
def ingest_cmd(paths: tuple[str, ...], store_url: str, engine: str, jobs: int | None, scheduler: str | None,
               progress: bool | None, fmt: str, output: str | None, as_of: str | None = None) -> None:
    """Run the per-snapshot pipeline (load, normalize, enrich, fit, measure, GEX) on every snapshot in PATHS
    (files, directories, globs; a DataShop or OptionsDX file gives one snapshot per quote time) and write the
    Parquet store: tables contracts, metrics, surface_params and failures (schema in docs/store.md).

    Ingesting the same data again adds nothing (identity by content hash); each snapshot is committed
    atomically, so an interrupted run leaves no partial snapshot and a rerun completes it. A snapshot that
    fails is recorded in `failures` with its reason and the run goes on.

    \b
    Example:
      volsurf ingest sample_chains/ --store history.store
      volsurf ingest 'chains/**/*.csv' --store history.store --jobs 2 --progress
      volsurf ingest chains/ --store /shared/history.store --scheduler tcp://10.0.0.5:8786
      volsurf ingest spy_2022-04-04.json --store history.store --as-of '2022-04-04 16:15'
    """
    from volsurf.history.ingest import ingest

    res = ingest(list(paths), store_url, engine=engine, jobs=jobs, scheduler=scheduler, progress=progress,
                 as_of=as_of)
    for note in res.notes:
        click.echo(note, err=True)
    for o in res.outcomes:
        if o.status == "failed":
            click.echo(f"failed {o.source_file}: {o.reason}", err=True)
    summary = {"store": store_url, **res.summary()}
    records = [o.to_dict() for o in res.outcomes]
    if fmt == "table":
        shown = [r for r in records if r["status"] in ("failed", "duplicate")]
        emit(fmt, json_obj=None, records=shown if shown else None, columns=OUTCOME_COLUMNS[:-1], header=summary,
             output=output)
    else:
        emit(fmt, json_obj={**summary, "outcomes": records}, records=records, columns=OUTCOME_COLUMNS,
             output=output)


@click.command("query")
@click.argument("sql")
@click.option("--store", "store_url", required=True, help="The store (a directory or an fsspec URL).")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="DuckDB threads (default: CPU count).")
@format_option()
@output_option()
def query_cmd(sql: str, store_url: str, threads: int | None, fmt: str, output: str | None) -> None:
    """Run SQL (DuckDB) over a store's views: contracts, metrics, surface_params, failures.

    contracts has one row per contract of every committed snapshot (with underlying and trade_date),
    metrics one row per snapshot, surface_params one row per fitted expiry. Dates are ISO text.

    \b
    Example:
      volsurf query --store history.store "SELECT trade_date, rr25_30d, net_gex FROM metrics ORDER BY 1"
      volsurf query --store history.store "SELECT underlying, count(*) FROM contracts GROUP BY 1" --format csv
    """
    from volsurf.history.sql import query

    df = query(store_url, sql, threads=threads)
    records = df.to_dict(orient="records")
    emit(fmt, json_obj=records, records=records, columns=[str(c) for c in df.columns], output=output)
