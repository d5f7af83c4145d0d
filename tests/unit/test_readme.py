"""The README must stay true to the code: every setting and every command is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from tunelake.cli import app
from tunelake.settings import SETTINGS

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


def test_the_code_reads_no_undeclared_environment_variable():
    """Every variable the product code reads is a setting (TUNELAKE_<NAME>) or one of the few listed in
    `settings.OTHER_ENVIRONMENT`, which `tunelake config` shows and the README documents."""
    from tunelake.settings import OTHER_ENVIRONMENT

    declared = {s.env for s in SETTINGS.values()} | set(OTHER_ENVIRONMENT)
    read = re.compile(r"""environ(?:\.get|\.setdefault)?\(\s*["']([A-Z][A-Z0-9_]+)["']"""
                      r"""|environ\[["']([A-Z0-9_]+)["']\]""")
    src = REPO / "src" / "tunelake"
    found = {}
    for path in src.rglob("*.py"):
        if "synthetic" in path.parts:  # the fake world is not the product
            continue
        for m in read.finditer(path.read_text()):
            found.setdefault(m.group(1) or m.group(2), path.relative_to(src))
    # variables tunelake only sets for the libraries it starts (OpenBLAS threads) are not read
    undeclared = {k: str(v) for k, v in found.items() if k not in declared and not k.startswith("OPENBLAS_")}
    assert not undeclared, undeclared
    assert {"TUNELAKE_HOME", "TUNELAKE_DEBUG"} <= set(found)  # the scan does find what it looks for
    for name in OTHER_ENVIRONMENT:
        assert f"`{name}`" in README, f"environment variable {name} is not documented in README.md"
