"""The README's configuration table must name every setting and its default (docs never drift)."""

import re
from pathlib import Path

from opchain.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def _table_rows() -> dict[str, str]:
    """Environment variable -> the row it appears in, from the README's configuration table."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return {name: row for row in rows for name in re.findall(r"`(OPCHAIN_[A-Z_]+)`", row)}


def test_every_setting_is_in_the_readme_table() -> None:
    rows = _table_rows()
    missing = [
        f"OPCHAIN_{name.upper()}" for name in Settings.model_fields
        if f"OPCHAIN_{name.upper()}" not in rows
    ]  # fmt: skip
    assert not missing, f"settings missing from README's configuration table: {missing}"


def test_the_readme_names_no_setting_that_does_not_exist() -> None:
    known = {f"OPCHAIN_{name.upper()}" for name in Settings.model_fields}
    assert set(_table_rows()) <= known


def test_defaults_in_the_table_are_the_real_defaults() -> None:
    rows = _table_rows()
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, bool):
            shown = {str(default).lower()}
        elif isinstance(default, str):
            shown = {default}
        elif isinstance(default, int | float):
            shown = {str(default)} | ({str(int(default))} if default == int(default) else set())
        else:
            continue  # None, paths and lists are described in words
        cell = rows[f"OPCHAIN_{name.upper()}"].split("|")[-2]
        assert any(f"`{s}`" in cell for s in shown), f"README: {name} defaults to {default}"
