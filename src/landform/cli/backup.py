"""``landform backup`` and ``landform restore`` (the work is in landform.backup)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from landform.cli.options import cannot_write
from landform.settings import Settings, load_settings


@contextmanager
def _no_new_data_folder_unless_done() -> Iterator[None]:
    """A command that refuses or fails leaves no data folder it made: reading
    the settings makes the folder and its secret key, and a mistyped
    LANDFORM_DATA_DIR, or a restore refused before it changed anything,
    would leave one behind (the next start would take it for an instance)."""
    data_dir = Settings().data_dir
    existed = data_dir.exists()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise


def backup(
    output: Annotated[Path, typer.Option(help="A new (or empty) folder to write the backup into.")],
) -> None:
    """Back up the database, files and pending analytics, online.

    Everything goes into one folder with a manifest, while the server keeps
    running."""
    with _no_new_data_folder_unless_done():
        _backup(output)


def _backup(output: Path) -> None:
    from landform.backup.service import create_backup
    from landform.core.errors import DomainError

    settings = load_settings()
    if output.resolve().is_relative_to(settings.data_dir.resolve()):
        # Allowed (nothing of it is copied into the next backup), but a
        # backup lost with the disk it backs up is no backup.
        typer.echo(
            f"warning: {output} is inside the data folder: keep a copy somewhere else", err=True
        )
    made = not output.exists()
    # A backup holds what the database holds (password hashes, sealed
    # secrets): its folder and every file in it, pg_dump's too, are the
    # owner's alone, whatever the shell's umask.
    umask = os.umask(0o077)
    try:
        try:
            output.mkdir(parents=True, exist_ok=True)
            output.chmod(0o700)
        except OSError as exc:
            cannot_write(output, exc, into=True)
        try:
            manifest = asyncio.run(create_backup(settings, output, progress=typer.echo))
        except DomainError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            if made:  # what a failed run wrote is no backup
                shutil.rmtree(output, ignore_errors=True)
            raise typer.Exit(1) from exc
    finally:
        os.umask(umask)
    rows = sum(manifest.counts.values())
    typer.echo(
        f"backed up {manifest.database} at revision {manifest.revision}: {rows:,} rows, "
        f"{len(manifest.objects) - len(manifest.missing_objects):,} files, "
        f"{manifest.pending_events:,} pending analytics events, into {output}"
    )
    if manifest.missing_objects:
        typer.echo(
            f"warning: {len(manifest.missing_objects)} file(s) were deleted while the backup "
            "ran and are not in it (listed in manifest.json)",
            err=True,
        )


def restore(
    source: Annotated[Path, typer.Argument(help="The backup folder (with manifest.json).")],
    force: Annotated[
        bool, typer.Option(help="Replace the data in a database or file store that has some.")
    ] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel pg_restore jobs (PostgreSQL).")] = 2,
) -> None:
    """Restore a backup into the configured database and file store.

    Refuses while a server runs on this data folder, a damaged backup, one
    from a newer Landform, and a target with data unless --force."""
    with _no_new_data_folder_unless_done():
        settings = load_settings()
        _restore(settings, source, force, jobs)


def _restore(settings: Settings, source: Path, force: bool, jobs: int) -> None:
    from landform.backup.service import restore_backup
    from landform.core.errors import DomainError
    from landform.core.serving_lock import DataDirBusy, alone

    try:
        with alone(settings.data_dir):
            result = asyncio.run(
                restore_backup(settings, source, force=force, jobs=jobs, progress=typer.echo)
            )
    except DataDirBusy as exc:
        typer.echo(f"error: {exc}; nothing was changed", err=True)
        raise typer.Exit(1) from exc
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    manifest = result.manifest
    typer.echo(
        f"restored the backup of {manifest.created_at} ({sum(manifest.counts.values()):,} rows, "
        f"{result.objects_written:,} files written, {result.replayed_events:,} analytics events "
        f"replayed) in {result.seconds:.1f} s"
    )
    if result.missing_objects:
        typer.echo(
            f"warning: {len(result.missing_objects)} file(s) were deleted while the backup ran; "
            "their rows are restored without bytes",
            err=True,
        )
