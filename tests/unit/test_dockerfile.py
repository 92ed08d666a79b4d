"""The Dockerfile's key properties, read statically (no Docker daemon here: the image is not built in tests).

Slim Python 3.11 base, install without a pip cache, every package the project ships copied in,
a non-root user for everything that runs, /healthz as the health check (Python, since slim has
no curl), `iam-bot serve` as the command, and no secret in the image or its build context.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SECRET_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "IAM_BOT_ENCRYPTION_KEY", "DATABASE_URL", "AWS_")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def args_of(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def test_slim_python_311_base() -> None:
    assert args_of("FROM") == ["python:3.11-slim"]


def test_installs_the_project_without_a_pip_cache() -> None:
    (run_install,) = [r for r in args_of("RUN") if "pip install" in r]
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", run_install)


def test_copies_everything_the_package_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {src for rest in args_of("COPY") for src in rest.split()[:-1]}
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= copied
    for src in copied:
        assert (ROOT / src).exists(), src


def test_everything_runs_as_a_non_root_user() -> None:
    seq = instructions()
    users = [rest.split(":")[0] for word, rest in seq if word == "USER"]
    assert users, "no USER: the bot would run as root"
    assert all(u not in ("root", "0") for u in users)
    # The user exists in the image, and the command runs after the switch.
    assert any(re.search(rf"useradd .*--uid {users[-1]}\b", r) for r in args_of("RUN")), users[-1]
    words = [word for word, _ in seq]
    assert words.index("USER") < len(words) - 1 - words[::-1].index("CMD")
    assert "RUN" not in words[words.index("USER") :], "nothing may be installed after dropping root (it would fail)"


def test_health_check_asks_healthz_with_python() -> None:
    (check,) = args_of("HEALTHCHECK")
    assert "CMD" in check
    cmd = json.loads(check.split("CMD", 1)[1].strip())
    assert cmd[:2] == ["python", "-c"]
    assert "/healthz" in cmd[2] and "urllib.request" in cmd[2]
    assert "curl" not in check and "wget" not in check


def test_serves_on_3000() -> None:
    assert args_of("EXPOSE") == ["3000"]
    assert json.loads(args_of("CMD")[-1]) == ["iam-bot", "serve"]


def test_no_secret_is_baked_in() -> None:
    for word, rest in instructions():
        if word in ("ENV", "ARG", "LABEL"):
            for name in SECRET_SETTINGS:
                assert name not in rest, f"{word} {rest}: settings with secrets come from the environment at run time"
        if word in ("COPY", "ADD"):
            assert not re.search(r"\.env|\.key|\.db|\.sqlite|\.aws|\.git\b", rest), rest
            assert rest.split()[0] != ".", "COPY . copies whatever is lying in the checkout"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", ".env", "*.key", "*.db", "tests"):
        assert pattern in ignored, pattern


def test_release_step_is_documented() -> None:
    assert "iam-bot migrate" in DOCKERFILE.read_text()
    assert "release: iam-bot migrate" in (ROOT / "Procfile").read_text()


def test_the_demo_and_its_stand_ins_stay_out_of_the_production_install_and_image() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    for name in ("moto", "flask", "requests", "werkzeug"):
        assert name not in runtime, f"{name} is a runtime dependency"
    assert any(d.startswith("moto") for d in project["optional-dependencies"]["demo"])
    # The image installs the package without extras, and leaves the demo's code out.
    installs = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest]
    assert installs and all("[" not in rest.split("pip install", 1)[1].split("&&")[0] for rest in installs), installs
    assert "bot/demo" in (ROOT / ".dockerignore").read_text().split()
