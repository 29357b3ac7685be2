"""The ``volsurf`` command line: a thin layer over the public Python API.

Commands live in :mod:`volsurf.cli` (one module per command group) and are imported only when called, so that ``volsurf --help``
stays fast (no numpy/pandas/matplotlib import at start-up).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from volsurf import __version__

# name -> (module, attribute, one-line help shown by `volsurf --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "inspect": ("volsurf.cli.chain", "inspect_cmd", "Summarise a chain file: underlying, spot, dates, counts, hygiene."),
    "normalize": ("volsurf.cli.chain", "normalize_cmd", "Write a chain file in volsurf's canonical CSV."),
    "iv": ("volsurf.cli.pricing", "iv_cmd", "Per-contract implied vols, forwards and greeks."),
    "forwards": ("volsurf.cli.pricing", "forwards_cmd", "Implied forward, discount, rate and dividend per expiry."),
    "surface": ("volsurf.cli.surface", "surface_cmd", "Fit the arbitrage-free surface and SVI/eSSVI parameters."),
    "skew": ("volsurf.cli.skew", "skew_cmd", "Skew, variance index, OTM put demand and calendar context."),
    "track": ("volsurf.cli.skew", "track_cmd", "Skew and demand metrics across many snapshots."),
    "ingest": ("volsurf.cli.store", "ingest_cmd", "Ingest chain files into a Parquet store of snapshots and metrics."),
    "query": ("volsurf.cli.store", "query_cmd", "SQL (DuckDB) over a Parquet store's tables."),
    "fetch": ("volsurf.cli.fetch", "fetch_cmd", "Collect Cboe delayed-quotes snapshots into the store, once or on a schedule."),
    "flags": ("volsurf.cli.skew", "flags_cmd", "Quarter-end hedging/rebalancing flags with evidence."),
    "gex": ("volsurf.cli.gex", "gex_cmd", "Dealer gamma exposure, profile, gamma flip and walls."),
    "rebalance": ("volsurf.cli.flows", "rebalance_cmd", "Estimate 60/40 rebalancing flow from returns."),
    "volume-spikes": ("volsurf.cli.flows", "volume_spikes_cmd", "Flag month/quarter-end volume spikes."),
    "cta": ("volsurf.cli.cta", "cta_cmd", "Trend-follower (CTA) positioning, trigger levels and scenario flows."),
    "divergence": ("volsurf.cli.cta", "divergence_cmd", "Broad vs tech index return-spread divergence at quarter-ends."),
    "report": ("volsurf.cli.report", "report_cmd", "Full HTML/JSON report for one chain (the main job)."),
    "study": ("volsurf.cli.study", "study_cmd", "Event studies on daily series: volsurf study quarter-end FILE..."),
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, short = entry
        if ctx.resilient_parsing or "--help" in sys.argv[1:2] or (len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help")):
            # `volsurf --help` lists commands without importing them.
            return click.Command(cmd_name, help=short, short_help=short)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            return None
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="volsurf")
def cli() -> None:
    """volsurf: options volatility surface analyzer.

    \b
    Example:
      volsurf inspect sample_chains/spx_2026-07-31_close.csv
      volsurf report sample_chains/spx_2026-07-31_close.csv -o out/
    """


#: Commands whose warnings are printed at once (they run for hours): the others print theirs at the end.
LIVE_WARNING_COMMANDS = frozenset({"fetch"})


def _runtime_warnings_are_errors() -> bool:
    """Whether the warning filters in force escalate RuntimeWarning to an error (``-W error``, pytest)."""
    import warnings

    for action, msg, category, module, _lineno in warnings.filters:
        if issubclass(RuntimeWarning, category) and (msg is None or not msg.pattern) and (
                module is None or not module.pattern):
            return action == "error"
    return False


def _one_line_usage(exc: click.ClickException) -> str:
    """A click usage error (bad option, unreadable FILE argument) as one ``Error:`` line."""
    from volsurf.errors import clip

    text = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text += f" (see '{ctx.command_path} --help')"
    return f"Error: {clip(text, 300)}"


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt caused ``exc`` (anywhere in its chain of causes and contexts)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the CLI; every failure ends as one line on stderr.

    Volsurf errors, usage errors and files that cannot be written print one ``Error: ...`` line (control
    characters replaced, about 300 characters at most) and exit 2; Ctrl-C prints ``Interrupted.`` and exits 130
    (once the command has finished, a Ctrl-C during the process's exit is ignored).
    Warnings are printed when the command has succeeded (and dropped when it fails).
    numpy's RuntimeWarnings (NaN arithmetic on bad input) are not printed, unless warnings are escalated to
    errors (``python -W error``, the test suite), so that their sources get fixed.
    """
    import warnings

    from volsurf.errors import VolsurfError, VolsurfWarning, clip

    # Warnings are held back until the command ends: printed after a success, dropped after a failure or an
    # interrupt, whose one line then stands alone (the error's hint says what to fix).
    # Commands that run on a schedule for hours print them as they come.
    pending: list[str] = []
    args = list(sys.argv[1:] if argv is None else argv)
    live = next((a for a in args if not a.startswith("-")), None) in LIVE_WARNING_COMMANDS

    def _show(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
        line = f"warning: {clip(str(message), 400)}"
        if live:
            click.echo(line, err=True)
        else:
            pending.append(line)

    warnings.showwarning = _show
    warnings.simplefilter("default", VolsurfWarning)
    if not _runtime_warnings_are_errors():
        warnings.simplefilter("ignore", RuntimeWarning)
    try:
        cli.main(args=argv, prog_name="volsurf", standalone_mode=False)
        if argv is None:  # a process of its own (not a caller's in-process run)
            import signal

            # The command is done and its outputs are whole. A Ctrl-C during the interpreter's teardown (up to
            # 0.2 s after a report) would kill the process by the signal, with no message and status -2: from
            # here on it finishes its exit instead.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(_one_line_usage(exc), err=True)
        sys.exit(exc.exit_code)
    except VolsurfError as exc:
        click.echo(f"Error: {exc.one_line()}", err=True)
        sys.exit(2)
    except OSError as exc:
        # The file system refused (a folder not writable, a path under a file, a disk full): not a bug.
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"Error: {clip(where + (exc.strerror or str(exc)), 300)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:
        # A Ctrl-C while a C extension initialises (matplotlib's ft2font, say) surfaces as the import's own error
        # ("ImportError: initialization failed") with the KeyboardInterrupt as its cause: still an interrupt.
        if not _interrupted(exc):
            raise
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    for line in pending:
        click.echo(line, err=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
