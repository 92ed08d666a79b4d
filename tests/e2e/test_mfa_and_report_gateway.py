"""IamGateway.credential_report and mfa_enabled against moto's IAM over HTTP, with the fault proxy where IAM must misbehave.

moto answers the first GenerateCredentialReport with STARTED and the next with COMPLETE, as IAM does
for an account without a recent report, so the polling runs for real. The sleeps are recorded
instead of slept, so the waiting is checked step by step without taking any time.
"""

from __future__ import annotations

import csv
import io
from datetime import timezone
from typing import Any

import boto3
import pytest

from bot.iam.errors import AwsError
from bot.iam.gateway import IamGateway
from tests.support.fault_proxy import FaultProxy


def _count_calls(gw: IamGateway, operation: str) -> list[str]:
    """A list that grows by one each time the gateway sends `operation` (botocore's own event)."""
    sent: list[str] = []
    gw.iam.meta.events.register(f"before-call.iam.{operation}", lambda **_: sent.append(operation))
    return sent


@pytest.fixture
def gateway(moto: Any, iam: Any) -> IamGateway:
    """A gateway straight to moto (AWS_ENDPOINT_URL), on an account `iam` has just reset: no report yet."""
    return IamGateway(boto3.session.Session())


def _rows(content: bytes) -> dict[str, dict[str, str]]:
    return {r["user"]: r for r in csv.DictReader(io.StringIO(content.decode()))}


# ---------------------------------------------------------------- credential_report


def test_the_report_is_polled_until_iam_completes_it(gateway: IamGateway, iam: Any) -> None:
    iam.create_user(UserName="alice")
    iam.create_user(UserName="bob", Path="/iam-bot/")
    generated = _count_calls(gateway, "GenerateCredentialReport")
    slept: list[float] = []

    content, generated_at = gateway.credential_report(sleep=slept.append)

    assert isinstance(content, bytes)
    rows = _rows(content)
    assert {"alice", "bob"} <= set(rows)
    assert rows["bob"]["arn"].endswith(":user/iam-bot/bob") and rows["alice"]["mfa_active"] == "false"
    assert generated_at.tzinfo is not None and generated_at.utcoffset() == timezone.utc.utcoffset(None)
    assert len(generated) == 2, "moto's first answer is STARTED: the gateway must ask again"
    assert slept == [1.0]  # one poll step between the two


def test_a_recent_report_is_read_without_waiting(gateway: IamGateway, iam: Any) -> None:
    gateway.credential_report(sleep=lambda _: None)  # now the account has one
    iam.create_user(UserName="carol")
    slept: list[float] = []
    content, _ = gateway.credential_report(sleep=slept.append)
    assert slept == [] and "carol" in _rows(content)


def test_a_report_still_in_progress_ends_in_report_in_progress_within_the_wait(gateway_behind_proxy: tuple[IamGateway, FaultProxy]) -> None:
    gw, proxy = gateway_behind_proxy
    # IAM keeps answering as while it generates: 404 ReportInProgress (CredentialReportNotReadyException).
    proxy.fail("GetCredentialReport", code="ReportInProgress", status=404, times=100)
    slept: list[float] = []

    with pytest.raises(AwsError) as raised:
        gw.credential_report(wait_seconds=3.5, sleep=slept.append, clock=lambda: sum(slept))

    err = raised.value
    assert err.code == "ReportInProgress" and err.action == "GetCredentialReport"
    assert "IAM is still generating the account's credential report; try again in a minute." in err.explain()
    assert slept == [1.0, 2.0, 0.5] and sum(slept) == 3.5  # growing steps, cut to the wait left
    calls = [a for a in proxy.seen if a in ("GenerateCredentialReport", "GetCredentialReport")]
    # One Generate per poll step (and a first one), each followed by a Get once IAM says COMPLETE.
    assert calls.count("GenerateCredentialReport") == len(slept) + 1
    assert calls == ["GenerateCredentialReport"] + ["GenerateCredentialReport", "GetCredentialReport"] * 3


def test_steps_grow_to_five_seconds_at_most(gateway_behind_proxy: tuple[IamGateway, FaultProxy]) -> None:
    gw, proxy = gateway_behind_proxy
    proxy.fail("GetCredentialReport", code="ReportInProgress", status=404, times=100)
    slept: list[float] = []
    with pytest.raises(AwsError):
        gw.credential_report(wait_seconds=20.0, sleep=slept.append, clock=lambda: sum(slept))
    assert slept == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0] and sum(slept) == 20.0


def test_time_spent_waiting_on_iam_counts_toward_the_wait(gateway_behind_proxy: tuple[IamGateway, FaultProxy]) -> None:
    gw, proxy = gateway_behind_proxy
    proxy.fail("GetCredentialReport", code="ReportInProgress", status=404, times=100)
    slept: list[float] = []
    ticks = iter(range(0, 1000, 2))  # each look at the clock: 2 s later (slow IAM answers, not sleeps)
    with pytest.raises(AwsError):
        gw.credential_report(wait_seconds=5.0, sleep=slept.append, clock=lambda: float(next(ticks)))
    assert slept == [1.0, 1.0]  # 2 s, then 4 s gone: only 1 s was left each time; at 6 s it gives up


@pytest.mark.parametrize("code,status", [("ReportExpired", 410), ("ReportNotPresent", 410), ("ReportInProgress", 404)])
def test_a_report_gone_or_not_ready_is_generated_again(gateway_behind_proxy: tuple[IamGateway, FaultProxy], iam: Any, code: str, status: int) -> None:
    gw, proxy = gateway_behind_proxy
    iam.create_user(UserName="dave")
    gw.credential_report(sleep=lambda _: None)  # a report exists: Generate answers COMPLETE from now on
    proxy.fail("GetCredentialReport", code=code, status=status, times=1)
    before = len(proxy.seen)
    slept: list[float] = []

    content, _ = gw.credential_report(sleep=slept.append)

    assert "dave" in _rows(content) and slept == [1.0]
    assert proxy.seen[before:] == ["GenerateCredentialReport", "GetCredentialReport"] * 2


def test_other_errors_are_not_waited_on(gateway_behind_proxy: tuple[IamGateway, FaultProxy]) -> None:
    gw, proxy = gateway_behind_proxy
    proxy.fail("GenerateCredentialReport", code="AccessDenied", status=403)
    slept: list[float] = []
    with pytest.raises(AwsError) as raised:
        gw.credential_report(sleep=slept.append)
    assert raised.value.code == "AccessDenied" and raised.value.action == "GenerateCredentialReport" and slept == []


# ---------------------------------------------------------------- mfa_enabled


def test_mfa_enabled_once_a_device_is_enrolled(gateway: IamGateway, iam: Any) -> None:
    iam.create_user(UserName="erin")
    assert gateway.mfa_enabled("erin") is False
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="erin")["VirtualMFADevice"]["SerialNumber"]
    assert gateway.mfa_enabled("erin") is False  # created, not yet enabled for the user
    iam.enable_mfa_device(UserName="erin", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    assert gateway.mfa_enabled("erin") is True


def test_mfa_enabled_of_a_missing_user_is_no_such_entity(gateway: IamGateway) -> None:
    with pytest.raises(AwsError) as raised:
        gateway.mfa_enabled("nobody")
    assert raised.value.code == "NoSuchEntity" and raised.value.action == "ListMFADevices"
