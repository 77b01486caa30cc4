"""Options more than one command group takes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from landform.settings import Settings

if TYPE_CHECKING:
    from landform.ops.sla import Sla

SlaFile = Annotated[
    Path | None, typer.Option(help="The SLA thresholds file (default: LANDFORM_SLA_FILE or ours).")
]


Output = Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")]


def cannot_write(path: Path, exc: OSError, into: bool = False) -> NoReturn:
    """End a command whose --output cannot be written: one line, exit 1."""
    where = f"into {path}" if into else str(path)
    typer.echo(f"error: cannot write {where}: {exc.strerror or exc}", err=True)
    raise typer.Exit(1) from exc


def write_output(text: str, output: Path | None) -> None:
    """``text`` to stdout, or to the --output file (saying so)."""
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        cannot_write(output, exc)
    typer.echo(f"wrote {output}")


def load_sla(sla_file: Path | None) -> Sla:
    """The SLA of --sla-file, else of LANDFORM_SLA_FILE, else ours; a bad
    file ends the command with the file, the row and the reason (exit 2,
    as a bad setting does: for `loadtest`, 1 means the SLA was missed)."""
    from landform.ops.sla import Sla, SlaFileError

    # The settings alone: load_settings() would make a data folder and a
    # secret key wherever a load test is started from.
    configured = Settings().sla_file
    path = sla_file or (Path(configured) if configured else None)
    try:
        return Sla.load(path)
    except SlaFileError as exc:
        setting = "" if sla_file or not configured else "LANDFORM_SLA_FILE: "
        typer.echo(f"error: {setting}{exc}", err=True)
        raise typer.Exit(2) from exc
