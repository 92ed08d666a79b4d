from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from hypothesis import HealthCheck, settings

from bot.iam.gateway import IamGateway
from tests.support.fault_proxy import FaultProxy
from tests.support.harness import FakeClock, RunningBot
from tests.support.services import MotoServer, PostgresDatabase, ensure_postgres
from bot.demo.standin import SlackStandIn

# Nothing in the tests may reach real AWS: fake credentials, a fixed region, and no profile.
for _k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_k, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true"
)


# A busy 2-core machine can make generating an example slow; that says nothing about the code.
settings.register_profile("busy-machine", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("busy-machine")


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    # boto3 honours AWS_ENDPOINT_URL itself, exactly as in production.
    os.environ["AWS_ENDPOINT_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def standin_server() -> Iterator[SlackStandIn]:
    s = SlackStandIn().start()
    yield s
    s.stop()


@pytest.fixture
def standin(standin_server: SlackStandIn) -> SlackStandIn:
    standin_server.reset()
    return standin_server


@pytest.fixture
def iam(moto: MotoServer):
    moto.reset()
    return boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PostgresDatabase | None]:
    if not ensure_postgres():
        if os.environ.get("IAM_BOT_REQUIRE_PG"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required (IAM_BOT_REQUIRE_PG is set) but not reachable")
        yield None
        return
    db = PostgresDatabase().create()
    yield db
    db.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_database: PostgresDatabase | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'iam-bot.db'}"
    if pg_database is None:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    from bot.runtime.db import make_engine, migrate

    migrate(make_engine(pg_database.url))
    pg_database.truncate_all()
    return pg_database.url


@pytest.fixture
def postgres_url(pg_database: PostgresDatabase | None) -> str:
    """For what only PostgreSQL does: several replicas on one database."""
    if pg_database is None:
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    from bot.runtime.db import make_engine, migrate

    migrate(make_engine(pg_database.url))
    pg_database.truncate_all()
    return pg_database.url


@pytest.fixture
def bot(database_url: str, standin: SlackStandIn, moto: MotoServer, iam) -> Iterator[RunningBot]:
    running = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()
    yield running
    running.stop()


@pytest.fixture
def clocked(database_url: str, standin: SlackStandIn, moto: MotoServer, iam) -> Iterator[tuple[RunningBot, FakeClock]]:
    """A bot on an injected clock whose housekeeping (schedules, retirements, the MFA watch) the test runs itself, at the times it sets."""
    clock = FakeClock()
    running = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url, clock=clock, housekeeping=False).start()
    yield running, clock
    running.stop()


@pytest.fixture
def gateway_behind_proxy(moto: MotoServer, iam, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[IamGateway, FaultProxy]]:
    """An IamGateway that reaches moto through the fault proxy (tests choose what IAM answers)."""
    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield IamGateway(boto3.session.Session()), proxy
    proxy.stop()


@pytest.fixture
def bot_behind_proxy(database_url: str, standin: SlackStandIn, moto: MotoServer, iam, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningBot, FaultProxy]]:
    """A bot that reaches IAM through the fault proxy (tests choose what IAM answers)."""
    proxy = FaultProxy(moto.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    running = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()
    yield running, proxy
    running.stop()
    proxy.stop()
