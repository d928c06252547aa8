"""`reconciler emulator serve`: run the local Gemini Files + Batches emulator in the foreground.

Thin by design: flags become `EmulatorSettings`, the emulator package does the rest.
"""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.emulator import EmulatorSettings, serve

_DEFAULTS = EmulatorSettings()


@click.group()
def emulator() -> None:
    """Local emulator of the Gemini Batch API (Files + Batches), for tests and offline demos."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=int, help="TCP port (0 picks a free one)."
)
@click.option(
    "--data-dir",
    default=".reconciler/emulator",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where jobs and files are kept; reuse it to keep state across restarts.",
)
@click.option(
    "--job-seconds",
    default=2.0,
    show_default=True,
    type=float,
    help="Seconds from create to SUCCEEDED.",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=float,
    help="Emulated seconds per real second for the 48 h file/job lifetimes.",
)
@click.option(
    "--api-key",
    default=None,
    help="Accept only this key (default: any non-empty key); the admin API then needs it too.",
)
@click.option(
    "--max-concurrent-jobs",
    default=100,
    show_default=True,
    type=int,
    help="Pending+running jobs allowed before create answers 429.",
)
@click.option(
    "--max-enqueued-tokens",
    default=_DEFAULTS.max_enqueued_tokens,
    show_default=True,
    type=int,
    help="Per model: estimated input tokens (bytes/4) of open jobs before create answers 429;"
    " 0: no limit.",
)
@click.option(
    "--max-file-bytes",
    default=_DEFAULTS.max_file_bytes,
    show_default=True,
    type=int,
    help="Largest file an upload may make; a larger one answers 400.",
)
@click.option(
    "--storage-quota-bytes",
    default=_DEFAULTS.storage_quota_bytes,
    show_default=True,
    type=int,
    help="Bytes all files together may take; an upload past it answers 429.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fault RNG.")
@click.option("--rate-429", default=0.0, type=float, help="Probability of 429 per call.")
@click.option("--rate-500", default=0.0, type=float, help="Probability of 500 per call.")
@click.option("--rate-503", default=0.0, type=float, help="Probability of 503 per call.")
@click.option(
    "--drop-rate", default=0.0, type=float, help="Probability of closing a connection unanswered."
)
@click.option(
    "--latency", "latency_seconds", default=0.0, type=float, help="Seconds added to every call."
)
@click.option(
    "--request-error-rate",
    default=0.0,
    type=float,
    help="Share of requests that end with an error.",
)
@click.option("--fail-next-jobs", default=0, type=int, help="The next N jobs end FAILED.")
@click.option("--expire-next-jobs", default=0, type=int, help="The next N jobs end EXPIRED.")
@click.option(
    "--results-delay",
    "results_delay_seconds",
    default=0.0,
    type=float,
    help="Quirk: results file 404s for this long after SUCCEEDED.",
)
@click.option(
    "--shuffle-inline-responses",
    is_flag=True,
    help="Quirk: inline responses reordered, no metadata.",
)
@click.option(
    "--undeletable-result-files", is_flag=True, help="Quirk: deleting a results file answers 400."
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_command(host: str, port: int, data_dir: Path, log_level: str, **flags: object) -> None:
    """Serve the emulator at http://HOST:PORT (pass it to the SDK as base_url)."""
    try:
        settings = EmulatorSettings(**flags)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    shown = f"[{host}]" if ":" in host else host

    def listening(bound: int) -> None:
        # The bound port, not the asked one: `--port 0` lets the system pick a free port.
        click.echo(f"emulator: http://{shown}:{bound} data-dir={data_dir}", err=True)

    try:
        serve(data_dir, settings, host=host, port=port, log_level=log_level, on_listening=listening)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {shown}:{port}: {exc.strerror or exc}"
        ) from None
