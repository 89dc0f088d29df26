"""``opchain config``: every setting's value as a command would see it, and where it came from."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .console import load_settings, out

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from opchain.settings import Settings

HIDDEN = "***"


def show_config() -> None:
    """Print every setting's value as the other commands see it, and where it came from: the
    environment, the `.env` file of the working directory, or the default (docs/configuration.md
    describes each). Secrets, and the user and password in a URL, are shown as ***."""
    from dotenv import dotenv_values

    settings = load_settings()
    dotenv = dotenv_values(".env") if Path(".env").is_file() else {}
    lines = rows(settings, os.environ, dotenv)
    width = max(len(name) for name, _, _ in lines)
    for name, value, origin in lines:
        out.print(f"{name:<{width}}  {value}  ({origin})", markup=False, highlight=False,
                  soft_wrap=True)  # fmt: skip


def rows(
    settings: Settings, environ: Mapping[str, str], dotenv: Mapping[str, str | None]
) -> list[tuple[str, str, str]]:
    """Per setting, in declaration order: its first environment name, its value as text and
    where it came from (``environment NAME``, ``.env NAME`` or ``default``). Names are not
    case-sensitive, and the environment wins over ``.env``, as for Settings itself."""
    from opchain.settings_doc import env_names, is_secret, value_text

    given = {k.upper(): k for k in environ}
    filed = {k.upper(): k for k in dotenv}
    found = []
    for name, field in type(settings).model_fields.items():
        names = env_names(name, field)
        origin = "default"
        for where, keys in (("environment", given), (".env", filed)):
            hit = next((keys[n] for n in _lookup(name, field, names) if n in keys), None)
            if hit is not None:
                origin = f"{where} {hit}"
                break
        value = getattr(settings, name)
        shown = _shown(value, is_secret(field.annotation), value_text)
        found.append((names[0], shown, origin))
    return found


def _lookup(name: str, field: object, names: list[str]) -> list[str]:
    """Every name Settings reads the setting from, upper-case: the documented ones and, for a
    setting with aliases, its own name too (accepted, but not documented)."""
    alias = getattr(field, "validation_alias", None)
    extra = [name.upper()] if alias is not None else []
    return [*names, *extra]


def _shown(value: object, secret: bool, text: Callable[[object], str]) -> str:
    if value is None or value == ():
        return "-"
    if secret:
        return HIDDEN
    return re.sub(r"://[^/@]*@", f"://{HIDDEN}@", text(value))  # a URL's user and password
