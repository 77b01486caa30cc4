"""`landform --help` lists each command by the first paragraph of its help:
one line, or the list prints the first lines of a wrapped sentence."""

from __future__ import annotations

from typing import Any

import typer.main

from landform.cli.main import app


def commands(group: Any, prefix: str = "landform") -> list[tuple[str, Any]]:
    found = []
    for name, command in sorted(getattr(group, "commands", {}).items()):
        found.append((f"{prefix} {name}", command))
        found.extend(commands(command, f"{prefix} {name}"))
    return found


def test_every_command_is_summed_up_in_one_line() -> None:
    listed = commands(typer.main.get_command(app))
    assert len(listed) > 20
    for name, command in listed:
        summary = (command.help or "").strip().split("\n\n", 1)[0]
        assert summary and "\n" not in summary, f"{name}: {summary!r}"
