"""`iam-bot serve` as real OS processes: the deployment's replicas, started, killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.harness import AUDIT_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.support.services import free_port
from bot.demo.slack_sender import SlackSender
from bot.demo.standin import SlackStandIn

ROOT = Path(__file__).resolve().parents[2]
IAM_BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


class BotProcess:
    """One replica. `.slack` sends it signed requests; `.standin` is the Slack it talks to."""

    def __init__(
        self,
        *,
        database_url: str,
        standin: SlackStandIn,
        aws_url: str,
        key: str,
        logdir: Path,
        name: str = "replica",
        approvers: str = "UAPPROVER1,UAPPROVER2",
        lease_seconds: float = 2.0,
        extra_env: dict[str, str] | None = None,
    ):
        self.name = name
        self.standin = standin
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / f"{name}-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IAM_BOT_", "DATABASE_URL"))}
        env.update(
            PYTHONPATH=str(ROOT),
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=standin.url,
            DATABASE_URL=database_url,
            IAM_BOT_APPROVERS=approvers,
            IAM_BOT_ENCRYPTION_KEY=key,
            IAM_BOT_AUDIT_KEY=AUDIT_KEY,  # replicas of one deployment share it
            IAM_BOT_JOB_LEASE_SECONDS=str(lease_seconds),
            IAM_BOT_WORKER_POLL_SECONDS="0.3",
            PORT=str(self.port),
            AWS_ENDPOINT_URL=aws_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            LOG_LEVEL="DEBUG",  # our loggers at their most verbose: they must still leak nothing
            IAM_BOT_ALLOW_UNBOUNDED="true",  # moto's users need no boundary here (serve refuses to start without one otherwise)
            **(extra_env or {}),
        )
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.slack = SlackSender(self.url, SIGNING_SECRET, response_url_base=standin.hooks_url, on_view_response=standin.accept_view_response)

    def start(self, timeout: float = 60) -> BotProcess:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(IAM_BOT + ["serve"], env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.logs()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no handler runs, no lease is released, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM, as a platform sends before replacing a process; returns the seconds it took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
