"""Real stand-ins started for tests: moto as a server process, the PostgreSQL test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("IAM_BOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto_server in its own process, reached over HTTP like AWS (via AWS_ENDPOINT_URL)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.recording = workdir / "moto_recording"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        # AWS-managed policies (ReadOnlyAccess, ...) exist in a real account; moto loads them on request.
        env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(self.recording), "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_main.py")), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/moto-api/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def reset(self) -> None:
        requests.post(self.url + "/moto-api/reset", timeout=10).raise_for_status()

    def start_recording(self) -> None:
        requests.post(self.url + "/moto-api/recorder/reset-recording", timeout=10)
        requests.post(self.url + "/moto-api/recorder/start-recording", timeout=10)

    def recorded(self) -> list[dict]:
        """Requests moto received since start_recording(): AWS actions with their parameters."""
        import json
        from urllib.parse import parse_qs

        raw = requests.get(self.url + "/moto-api/recorder/download-recording", timeout=10).text
        out = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                import base64

                body = base64.b64decode(body).decode()
            params = {k: v[0] for k, v in parse_qs(body).items()}
            out.append(params)
        return out

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


def ensure_postgres() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class PostgresDatabase:
    """A throwaway database on the local server, dropped at the end of the session."""

    def __init__(self) -> None:
        self.name = f"iambot_test_{uuid.uuid4().hex[:10]}"
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}"
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def create(self) -> PostgresDatabase:
        with self._admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self

    def truncate_all(self) -> None:
        engine = create_engine(self.url)
        with engine.begin() as c:
            tables = [r[0] for r in c.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
            if tables:
                c.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        engine.dispose()

    def drop(self) -> None:
        with self._admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()
