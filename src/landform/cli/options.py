"""Options more than one command group takes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from landform.settings import load_settings

if TYPE_CHECKING:
    from landform.ops.sla import Sla

SlaFile = Annotated[
    Path | None, typer.Option(help="The SLA thresholds file (default: LANDFORM_SLA_FILE or ours).")
]


def load_sla(sla_file: Path | None) -> Sla:
    from landform.ops.sla import Sla, SlaFileError

    configured = load_settings().sla_file
    path = sla_file or (Path(configured) if configured else None)
    try:
        return Sla.load(path)
    except SlaFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
