"""docs/cli.md is the CLI's --help output; this test fails when they drift apart.

Regenerate with:  python tests/test_docs.py
"""
from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from hyperdist.cli import main

CLI_MD = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _commands(group: click.Group, prefix: list[str]):
    yield prefix
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, [*prefix, name])
        else:
            yield [*prefix, name]


def render() -> str:
    parts = ["# CLI reference", "", "Generated from `--help` (`python tests/test_docs.py`); a test keeps it current.", ""]
    for path in _commands(main, []):
        out = CliRunner().invoke(main, [*path, "--help"], prog_name="hyperdist", terminal_width=100).output
        parts += [f"## hyperdist {' '.join(path)}".rstrip(), "", "```", out.rstrip(), "```", ""]
    return "\n".join(parts)


def test_cli_reference_matches_help():
    assert CLI_MD.read_text() == render(), "docs/cli.md is stale: run `python tests/test_docs.py`"


if __name__ == "__main__":
    CLI_MD.write_text(render())
