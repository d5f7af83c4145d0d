"""The README must stay true to the code: every setting and every command is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from tunelake.cli import app
from tunelake.config import SETTINGS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    head = README[:600]
    assert "make demo" in head and "make test" in head


def test_every_setting_is_documented():
    for name in SETTINGS:
        assert f"`{name}`" in README, f"setting {name} is not documented in README.md"


def _commands(group, prefix=""):
    for name, cmd in getattr(group, "commands", {}).items():
        full = f"{prefix}{name}"
        if getattr(cmd, "commands", None):
            yield from _commands(cmd, full + " ")
        else:
            yield full


def test_every_command_is_documented():
    commands = list(_commands(get_command(app)))
    assert {"import", "build", "sql", "demo", "generate"} <= set(commands)
    for c in commands:
        assert re.search(rf"`tunelake {re.escape(c)}[ `]", README), f"command `tunelake {c}` missing from README.md"
