"""IamGateway's side of disabling and offboarding (read_removal and one idempotent call per item) against moto's IAM over HTTP.

Where moto (5.2) falls short of IAM, the tests say so and check what can be checked:
- it has no service-specific credentials at all: CreateServiceSpecificCredential,
  ListServiceSpecificCredentials and DeleteServiceSpecificCredential are answered with an HTML 500.
  Those two calls are answered on the gateway's own client by `ServiceCredentials` below (answers
  checked against botocore's model, as botocore's Stubber checks them), and the request that
  DeleteServiceSpecificCredential puts on the wire is checked through the fault proxy;
- it deletes a user that still has access keys, a login profile, certificates, SSH keys, MFA devices
  or groups; IAM answers DeleteConflict. moto refuses only while policies remain (inline or attached),
  which is what the DeleteConflict test uses;
- it deletes a virtual MFA device still assigned to a user (IAM: DeleteConflict), so the tests keep
  IAM's order (deactivate, then delete) without relying on moto to enforce it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.common.constants import MARKER_TAG
from bot.domain.facts import AccessKeyFacts, RemovalFacts
from bot.iam.errors import AwsError
from bot.iam.gateway import IamGateway
from tests.support.fault_proxy import FaultProxy
from tests.support.moto_gaps import ServiceCredentials

USER = "leaver"
MARKER = "r-0042"
DOCUMENT = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]})


def _certificate() -> str:
    """A self-signed X.509 certificate (PEM), as UploadSigningCertificate takes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, USER)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ssh_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _calls(gw: IamGateway, operation: str) -> list[str]:
    """A list that grows by one each time the gateway sends `operation` (botocore's own event)."""
    sent: list[str] = []
    gw.iam.meta.events.register(f"before-call.iam.{operation}", lambda **_: sent.append(operation))
    return sent


@dataclass(frozen=True)
class Leaver:
    """What the user was given, as IAM named it."""

    keys: tuple[str, str]  # the first is active, the second inactive
    certificate: str
    ssh_key: str
    service_credentials: tuple[str, str]
    mfa: str  # the virtual device's serial (its ARN)
    policy_arn: str


def _make_leaver(iam: Any, *, marker: str = MARKER) -> Leaver:
    """A user the bot created (its marker, under its path), holding one of everything IAM makes DeleteUser wait for."""
    iam.create_user(UserName=USER, Path="/iam-bot/", Tags=[{"Key": MARKER_TAG, "Value": marker}, {"Key": "team", "Value": "data"}])
    iam.create_login_profile(UserName=USER, Password="Initial-Passw0rd!", PasswordResetRequired=True)
    keys = tuple(iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"] for _ in range(2))
    iam.update_access_key(UserName=USER, AccessKeyId=keys[1], Status="Inactive")
    cert = iam.upload_signing_certificate(UserName=USER, CertificateBody=_certificate())["Certificate"]["CertificateId"]
    ssh = iam.upload_ssh_public_key(UserName=USER, SSHPublicKeyBody=_ssh_public_key())["SSHPublicKey"]["SSHPublicKeyId"]
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=USER)["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName=USER, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    iam.put_user_policy(UserName=USER, PolicyName="own-buckets", PolicyDocument=DOCUMENT)
    arn = iam.create_policy(PolicyName="list-buckets", PolicyDocument=DOCUMENT)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=USER, PolicyArn=arn)
    for group in ("data-readers", "developers"):
        iam.create_group(GroupName=group)
        iam.add_user_to_group(UserName=USER, GroupName=group)
    return Leaver(
        keys=keys,  # type: ignore[arg-type]
        certificate=cert,
        ssh_key=ssh,
        service_credentials=("ACCAEXAMPLECODECOMMIT1", "ACCAEXAMPLECODECOMMIT2"),
        mfa=serial,
        policy_arn=arn,
    )


@pytest.fixture
def gateway(moto: Any, iam: Any) -> IamGateway:
    """A gateway straight to moto (AWS_ENDPOINT_URL), on an account `iam` has just reset."""
    return IamGateway(boto3.session.Session())


@pytest.fixture
def leaver(gateway: IamGateway, iam: Any) -> tuple[Leaver, ServiceCredentials]:
    made = _make_leaver(iam)
    return made, ServiceCredentials(gateway.iam, {USER: list(made.service_credentials)})


def _removals(gw: IamGateway, made: Leaver) -> list[tuple[str, Callable[[], bool]]]:
    """Every removal, in the order IAM's guide gives for deleting a user (AWS CLI)."""
    u = USER
    return [
        ("login profile", lambda: gw.delete_login_profile(user_name=u)),
        ("key 1", lambda: gw.delete_key(user_name=u, key_id=made.keys[0])),
        ("key 2", lambda: gw.delete_key(user_name=u, key_id=made.keys[1])),
        ("signing certificate", lambda: gw.delete_signing_certificate(user_name=u, certificate_id=made.certificate)),
        ("ssh key", lambda: gw.delete_ssh_public_key(user_name=u, key_id=made.ssh_key)),
        ("service credential 1", lambda: gw.delete_service_credential(user_name=u, credential_id=made.service_credentials[0])),
        ("service credential 2", lambda: gw.delete_service_credential(user_name=u, credential_id=made.service_credentials[1])),
        ("mfa (deactivate)", lambda: gw.deactivate_mfa_device(user_name=u, serial=made.mfa)),
        ("mfa (delete the virtual device)", lambda: gw.delete_virtual_mfa_device(serial=made.mfa)),
        ("inline policy", lambda: gw.delete_inline_policy(user_name=u, name="own-buckets")),
        ("managed policy", lambda: gw.detach_policy(user_name=u, policy_arn=made.policy_arn)),
        ("group data-readers", lambda: gw.remove_from_group(user_name=u, group="data-readers")),
        ("group developers", lambda: gw.remove_from_group(user_name=u, group="developers")),
    ]


# ---------------------------------------------------------------- read_removal


def test_read_removal_sees_everything_the_user_holds(gateway: IamGateway, leaver: tuple[Leaver, ServiceCredentials]) -> None:
    made, service = leaver
    facts = gateway.read_removal(USER)
    assert facts == RemovalFacts(
        user_name=USER,
        marker=MARKER,
        console=True,
        keys=(AccessKeyFacts(key_id=made.keys[0], active=True), AccessKeyFacts(key_id=made.keys[1], active=False)),
        signing_certificates=(made.certificate,),
        ssh_keys=(made.ssh_key,),
        service_credentials=made.service_credentials,
        mfa_devices=(made.mfa,),
        inline_policies=("own-buckets",),
        attached_policies=(made.policy_arn,),
        groups=facts.groups,  # in IAM's order, checked below
    )
    assert sorted(facts.groups) == ["data-readers", "developers"]
    assert made.mfa.startswith("arn:aws:iam::") and ":mfa/" in made.mfa
    assert not facts.empty
    assert service.markers == [None, "1"], "one credential a page: the gateway follows IAM's Marker"


def test_read_removal_of_a_user_the_bot_did_not_create_has_no_marker(gateway: IamGateway, iam: Any) -> None:
    iam.create_user(UserName="someone")
    ServiceCredentials(gateway.iam, {"someone": []})
    facts = gateway.read_removal("someone")
    assert facts == RemovalFacts(user_name="someone", marker=None, console=False) and facts.empty


def test_read_removal_of_a_missing_user_is_no_such_entity(gateway: IamGateway) -> None:
    with pytest.raises(AwsError) as raised:
        gateway.read_removal("nobody")
    assert raised.value.code == "NoSuchEntity" and raised.value.action == "read what user nobody holds"


# ---------------------------------------------------------------- removing, in IAM's order, each once


def test_offboarding_in_iams_order_then_delete_user(gateway: IamGateway, iam: Any, leaver: tuple[Leaver, ServiceCredentials]) -> None:
    made, service = leaver
    for what, remove in _removals(gateway, made):
        assert remove() is True, f"{what}: the first call removes it"
        assert remove() is False, f"{what}: called again (a resumed job), it is already gone"

    left = gateway.read_removal(USER)
    assert left.empty and left.marker == MARKER  # the marker goes with the user, not before
    assert service.deleted == [(USER, c) for c in made.service_credentials]
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []  # deleted, not merely unassigned

    assert gateway.delete_user(user_name=USER) is True
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=USER)
    assert gateway.delete_user(user_name=USER) is False
    # Every removal repeated once the user is gone too: nothing raises, nothing is removed.
    assert [what for what, remove in _removals(gateway, made) if remove() is not False] == []


def test_a_virtual_device_is_deleted_only_once_deactivated_and_a_hardware_one_never(gateway: IamGateway, iam: Any, leaver: tuple[Leaver, ServiceCredentials]) -> None:
    made, _ = leaver
    sent = _calls(gateway, "DeleteVirtualMFADevice")
    # A hardware token's serial and a FIDO security key's ARN: deactivating them was all; no call is made.
    assert gateway.delete_virtual_mfa_device(serial="GAHT12345678") is False
    assert gateway.delete_virtual_mfa_device(serial="arn:aws:iam::123456789012:u2f/user/leaver/fidosecuritykey-ABCDEF") is False
    assert sent == []
    assert gateway.deactivate_mfa_device(user_name=USER, serial=made.mfa) is True
    assert gateway.read_removal(USER).mfa_devices == ()  # the user's list no longer shows it: keep its serial
    (device,) = iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    assert device["SerialNumber"] == made.mfa  # still in the account until deleted
    assert gateway.delete_virtual_mfa_device(serial=made.mfa) is True
    assert gateway.delete_virtual_mfa_device(serial=made.mfa) is False
    assert sent == ["DeleteVirtualMFADevice"] * 2


def test_disabling_deactivates_a_key_and_removes_the_password_each_once(gateway: IamGateway, leaver: tuple[Leaver, ServiceCredentials]) -> None:
    made, _ = leaver
    assert gateway.delete_login_profile(user_name=USER) is True
    assert gateway.deactivate_key(user_name=USER, key_id=made.keys[0]) is True
    assert gateway.delete_login_profile(user_name=USER) is False
    facts = gateway.read_removal(USER)
    assert not facts.console and not any(k.active for k in facts.keys) and len(facts.keys) == 2


# ---------------------------------------------------------------- DeleteUser while something is left


def test_moto_deletes_a_user_that_still_has_a_key(gateway: IamGateway, iam: Any) -> None:
    """IAM answers DeleteConflict here; moto deletes the user anyway. Asserted as moto does it, so
    that a moto that starts refusing shows up here (then: expect AwsError DeleteConflict)."""
    iam.create_user(UserName="keyholder", Tags=[{"Key": MARKER_TAG, "Value": MARKER}])
    iam.create_access_key(UserName="keyholder")
    assert gateway.delete_user(user_name="keyholder") is True
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="keyholder")


def test_delete_user_while_a_policy_is_left_is_delete_conflict_and_can_be_tried_again(gateway: IamGateway, iam: Any) -> None:
    """moto refuses while a policy remains, as IAM does for anything left: the error says try again."""
    iam.create_user(UserName="granted", Tags=[{"Key": MARKER_TAG, "Value": MARKER}])
    iam.put_user_policy(UserName="granted", PolicyName="added-meanwhile", PolicyDocument=DOCUMENT)
    with pytest.raises(AwsError) as raised:
        gateway.delete_user(user_name="granted")
    err = raised.value
    assert err.code == "DeleteConflict" and err.action == "DeleteUser" and not err.transient
    assert "the request can be tried again, which removes what it finds first." in err.explain()
    iam.get_user(UserName="granted")  # still there
    ServiceCredentials(gateway.iam, {"granted": []})
    assert gateway.read_removal("granted").inline_policies == ("added-meanwhile",)  # what a retry finds first
    assert gateway.delete_inline_policy(user_name="granted", name="added-meanwhile") is True
    assert gateway.delete_user(user_name="granted") is True


# ---------------------------------------------------------------- on the wire, through the fault proxy


def test_delete_service_credential_sends_the_user_and_the_credential(gateway_behind_proxy: tuple[IamGateway, FaultProxy], iam: Any) -> None:
    """moto cannot answer it (no service-specific credentials): the proxy answers as IAM would, and
    its history shows the request the gateway sent."""
    gw, proxy = gateway_behind_proxy
    proxy.fail("DeleteServiceSpecificCredential", code="NoSuchEntity", status=404)
    assert gw.delete_service_credential(user_name=USER, credential_id="ACCAEXAMPLECODECOMMIT1") is False
    proxy.fail("DeleteServiceSpecificCredential", code="AccessDenied", status=403)
    with pytest.raises(AwsError) as raised:
        gw.delete_service_credential(user_name=USER, credential_id="ACCAEXAMPLECODECOMMIT1")
    assert raised.value.code == "AccessDenied" and raised.value.action == "DeleteServiceSpecificCredential"
    sent = [(a, {k: v for k, v in p.items() if k in ("UserName", "ServiceSpecificCredentialId")}) for a, p in proxy.history]
    assert sent == [("DeleteServiceSpecificCredential", {"UserName": USER, "ServiceSpecificCredentialId": "ACCAEXAMPLECODECOMMIT1"})] * 2


@pytest.mark.parametrize(
    "action,remove",
    [
        ("DeleteLoginProfile", lambda gw: gw.delete_login_profile(user_name=USER)),
        ("DeleteSigningCertificate", lambda gw: gw.delete_signing_certificate(user_name=USER, certificate_id="C" * 24)),
        ("DeleteSSHPublicKey", lambda gw: gw.delete_ssh_public_key(user_name=USER, key_id="APKA" + "E" * 16)),
        ("DeactivateMFADevice", lambda gw: gw.deactivate_mfa_device(user_name=USER, serial="GAHT12345678")),
        ("DeleteVirtualMFADevice", lambda gw: gw.delete_virtual_mfa_device(serial="arn:aws:iam::123456789012:mfa/leaver")),
        ("DeleteUserPolicy", lambda gw: gw.delete_inline_policy(user_name=USER, name="p")),
        ("DetachUserPolicy", lambda gw: gw.detach_policy(user_name=USER, policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess")),
        ("RemoveUserFromGroup", lambda gw: gw.remove_from_group(user_name=USER, group="g")),
        ("DeleteUser", lambda gw: gw.delete_user(user_name=USER)),
    ],
)
def test_errors_other_than_no_such_entity_propagate(gateway_behind_proxy: tuple[IamGateway, FaultProxy], action: str, remove: Callable[[IamGateway], bool]) -> None:
    gw, proxy = gateway_behind_proxy
    proxy.fail(action, code="AccessDenied", status=403)
    with pytest.raises(AwsError) as raised:
        remove(gw)
    assert (raised.value.code, raised.value.action) == ("AccessDenied", action)
    assert [a for a, _ in proxy.history] == [action]


# ---------------------------------------------------------------- undoing a provisioning, on the same calls


def test_delete_user_we_created_touches_only_a_user_with_the_marker(gateway: IamGateway, iam: Any) -> None:
    iam.create_user(UserName="made", Path="/iam-bot/", Tags=[{"Key": MARKER_TAG, "Value": MARKER}])
    iam.create_login_profile(UserName="made", Password="Initial-Passw0rd!")
    iam.create_access_key(UserName="made")
    iam.put_user_policy(UserName="made", PolicyName="p", PolicyDocument=DOCUMENT)
    iam.attach_user_policy(UserName="made", PolicyArn=iam.create_policy(PolicyName="q", PolicyDocument=DOCUMENT)["Policy"]["Arn"])
    iam.create_group(GroupName="g")
    iam.add_user_to_group(UserName="made", GroupName="g")

    assert gateway.delete_user_we_created(user_name="made", marker="r-other") is False
    iam.get_user(UserName="made")  # another request's user: untouched
    assert gateway.delete_user_we_created(user_name="made", marker=MARKER) is True
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="made")
    assert gateway.delete_user_we_created(user_name="made", marker=MARKER) is False
