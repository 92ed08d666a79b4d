"""Each gateway reads AWS_MAX_ATTEMPTS when it is made: botocore writes the resolved count into the
Config it is given, so a Config shared between gateways would keep the first one's count."""

from __future__ import annotations

import boto3
import pytest

from bot.iam.gateway import IamGateway


def test_each_gateway_takes_the_attempt_count_of_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    first = IamGateway(boto3.session.Session(region_name="us-east-1"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    second = IamGateway(boto3.session.Session(region_name="us-east-1"))
    assert (first._create_tries, second._create_tries) == (1, 4)
    assert second.iam.meta.config.retries["total_max_attempts"] == 4
    assert second._creates.meta.config.retries["total_max_attempts"] == 1  # creates are never repeated by botocore
