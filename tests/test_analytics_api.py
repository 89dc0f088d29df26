"""``opchain.analytics`` as a library: docs/analytics.md's tables are its public names, exactly
(datasette-style, both directions), each importable from the package itself, the example runs,
and importing the package stays light."""

import importlib
import inspect
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import opchain.analytics

DOC = (Path(__file__).parents[1] / "docs" / "analytics.md").read_text(encoding="utf-8")


def _documented() -> dict[str, str]:
    """``{name: module}`` from every table row of docs/analytics.md."""
    rows = re.findall(r"^\| `([A-Za-z_0-9]+)` \| [^|]+ \| `([a-z_0-9]+)` \|$", DOC, flags=re.M)
    return dict(rows)


def test_every_documented_name_is_importable_from_the_package() -> None:
    documented = _documented()
    assert len(documented) >= 40, "docs/analytics.md's tables were not found"
    for name, module in documented.items():
        value = getattr(opchain.analytics, name)
        home = importlib.import_module(f"opchain.analytics.{module}")
        assert value is getattr(home, name), f"{name} is not {module}.{name}"
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, f"{name} has no docstring"


def test_every_public_name_is_documented() -> None:
    assert sorted(opchain.analytics.__all__) == sorted(_documented())
    assert len(set(opchain.analytics.__all__)) == len(opchain.analytics.__all__)


def test_the_names_the_issue_reader_tried() -> None:
    from opchain.analytics import black76_price, greeks, implied_vol, max_pain

    price = black76_price(26400.0, 26500.0, 0.02, 0.14, True)
    assert math.isclose(float(implied_vol(price, 26400.0, 26500.0, 0.02, True)), 0.14)
    assert 0.0 < float(greeks(26400.0, 26500.0, 0.02, 0.14, True).delta) < 0.5
    assert max_pain([100.0, 110.0], [5.0, 1.0], [1.0, 5.0]) in (100.0, 110.0)


def test_function_names_win_over_their_modules_names() -> None:
    """``greeks`` and ``smile`` are modules and functions; importing the module (as the
    pipeline does) must not turn the package's attribute into the module."""
    code = (
        "import opchain.analytics.greeks, opchain.analytics.smile\n"
        "from opchain.analytics import greeks, smile\n"
        "import inspect\n"
        "assert inspect.isfunction(greeks) and inspect.isfunction(smile), (greeks, smile)\n"
        "from opchain.analytics.greeks import Greeks\n"
        "from opchain.analytics import chains\n"
        "assert inspect.ismodule(chains)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_documented_example_runs() -> None:
    example = re.search(r"```python\n(.*?)```", DOC, flags=re.S)
    assert example, "docs/analytics.md has no example"
    space: dict[str, object] = {}
    exec(example[1], space)
    assert math.isclose(float(np.asarray(space["vol"])), 0.14)
    assert np.asarray(space["g"].delta).shape == (2,)  # type: ignore[attr-defined]


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import opchain.analytics\n"
        "assert 'numpy' not in sys.modules and 'scipy' not in sys.modules\n"
        "from opchain.analytics import years_to_expiry\n"
        "assert 'numpy' not in sys.modules and 'scipy' not in sys.modules\n"
        "from opchain.analytics import implied_vol\n"
        "assert 'scipy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
