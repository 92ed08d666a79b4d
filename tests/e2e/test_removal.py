"""Day two: `/iam disable` and `/iam offboard` of a user the bot created: a plan of what is taken away,
a person decides, each removal made once and resumable, and the report to the requester and approvers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from models import AccessRequest, AuditEvent, MfaWatch, RequestState
from tests.support.harness import RunningBot, wait_until
from tests.support.journeys import APPROVER, OUTSIDER, REQUESTER, approval_messages, click, credentials_dm, request_user

POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


SERVICE_CREDENTIAL = "ACCAEXAMPLECODECOMMIT1"


@pytest.fixture
def bot(database_url, standin, moto, iam) -> Iterator[RunningBot]:
    running = RunningBot(database_url=database_url, standin=standin, moto_url=moto.url).start()
    # moto has no service-specific credentials: the harness's stand-in (tests.support.moto_gaps) gives this user one.
    running.service_credentials.held["off-full"] = [SERVICE_CREDENTIAL]
    yield running
    running.stop()


def created(bot: RunningBot, user_name: str, access: list[str], **fields: Any) -> str:
    short_id = request_user(bot, user_name=user_name, access=access, **fields)
    click(bot, APPROVER, "approve_request", short_id)
    credentials_dm(bot, short_id)
    return short_id


def command(bot: RunningBot, text: str, user: str = REQUESTER) -> str:
    """`/iam <text>`; the private answer, its text and blocks."""
    before = len(bot.standin.calls_to("response_url"))
    bot.slack.command(user, text)
    return everything(wait_until(lambda: bot.standin.calls_to("response_url")[before:], what=f"the answer to /iam {text}")[0].args)


def asked(answer: str) -> str:
    assert "Request *" in answer, answer
    return answer.split("Request *", 1)[1].split("*", 1)[0]  # the text comes first


def everything(args: dict[str, Any]) -> str:
    return str(args.get("text", "")) + json.dumps(args.get("blocks") or [], ensure_ascii=False)


def dms_to(bot: RunningBot, user: str, fragment: str) -> list[Any]:
    return [c for c in bot.standin.calls_to("chat.postMessage") if c.args["channel"] == "D" + user[1:] and fragment in everything(c.args)]


def told(bot: RunningBot, user: str, fragment: str) -> list[Any]:
    """Private answers to `user`: ephemeral where they clicked, or by DM."""
    return [c for c in bot.standin.calls_to("chat.postEphemeral") if c.args.get("user") == user and fragment in everything(c.args)] + dms_to(bot, user, fragment)


def state(bot: RunningBot, short_id: str) -> str:
    with bot.deps.sessionmaker.begin() as s:
        return s.scalars(select(AccessRequest.state).where(AccessRequest.short_id == short_id)).one().value


def applied(bot: RunningBot, short_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with bot.deps.sessionmaker.begin() as s:
        rid = s.scalars(select(AccessRequest.id).where(AccessRequest.short_id == short_id)).one()
        return [(e.action, (e.details or {}).get("target"), e.details or {}) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.request_id == rid, AuditEvent.action.like("applied:%")).order_by(AuditEvent.id))]


def certificate_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "iam-bot test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def ssh_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def load_everything(iam, user: str) -> str:  # type: ignore[no-untyped-def]
    """Give the user one of every item moto supports, beside what the bot made; the virtual MFA device's serial."""
    iam.create_access_key(UserName=user)  # its second key
    iam.upload_signing_certificate(UserName=user, CertificateBody=certificate_pem())
    iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=ssh_public_key())
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-phone")["VirtualMFADevice"]
    iam.enable_mfa_device(UserName=user, SerialNumber=device["SerialNumber"], AuthenticationCode1="123456", AuthenticationCode2="654321")
    iam.put_user_policy(UserName=user, PolicyName="extra", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}))
    iam.attach_user_policy(UserName=user, PolicyArn=POLICY)
    for group in ("off-a", "off-b"):
        iam.create_group(GroupName=group)
        iam.add_user_to_group(UserName=user, GroupName=group)
    return str(device["SerialNumber"])


def test_offboarding_removes_everything_iam_holds_then_the_user(bot, iam):
    created(bot, "off-full", ["console", "access_key"])
    serial = load_everything(iam, "off-full")

    short_id = asked(command(bot, "offboard off-full"))
    approval = bot.standin.wait_for("chat.postMessage", lambda c: short_id in everything(c.args) and "approve_request" in everything(c.args))
    plan = everything(approval.args)
    for words in (f"Delete the service-specific credential `{SERVICE_CREDENTIAL}`", "Delete the console password", "Delete the access key", "Delete the signing certificate", "Delete the SSH public key",
                  "Deactivate the MFA device", "Delete the virtual MFA device", "Delete the inline policy `extra`", "Detach `ReadOnlyAccess`",
                  "Remove from group `off-a`", "Remove from group `off-b`", "Delete the user", "this cannot be undone", "Nothing: the user is deleted"):
        assert words in plan, words
    assert plan.count("Delete the access key") == 2
    click(bot, APPROVER, "approve_request", short_id, approval)

    wait_until(lambda: state(bot, short_id) == "completed", what="the offboarding")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="off-full")
    assert serial not in [d["SerialNumber"] for d in iam.list_virtual_mfa_devices()["VirtualMFADevices"]]
    kinds = [a for a, _, _ in applied(bot, short_id)]
    assert kinds[0] == "applied:delete_login_profile" and kinds[-1] == "applied:delete_user" and len(kinds) == 13
    assert bot.service_credentials.deleted == [("off-full", SERVICE_CREDENTIAL)]
    for who in (REQUESTER, APPROVER):
        report = wait_until(lambda w=who: dms_to(bot, w, "was *offboarded*"), what=f"the report to {who}")[0]
        assert "Delete the signing certificate" in everything(report.args) and "This cannot be undone" in everything(report.args)

    # The bot no longer has the user: nothing more is offered for it.
    assert f"`off-full` was offboarded by request {short_id}" in command(bot, "rotate-key off-full")
    assert f"`off-full` was offboarded by request {short_id}" in command(bot, "offboard off-full")


def test_what_was_added_after_the_approval_is_taken_too_and_said_so(bot, iam):
    created(bot, "off-late", ["access_key"])
    short_id = asked(command(bot, "offboard off-late"))
    approval = bot.standin.wait_for("chat.postMessage", lambda c: short_id in everything(c.args) and "approve_request" in everything(c.args))
    late = iam.create_access_key(UserName="off-late")["AccessKey"]["AccessKeyId"]  # made after the plan
    click(bot, APPROVER, "approve_request", short_id, approval)
    wait_until(lambda: state(bot, short_id) == "completed", what="the offboarding")
    found = [(t, d.get("origin")) for a, t, d in applied(bot, short_id) if a == "applied:delete_access_key"]
    assert (late, "found when it was applied (added after the approval)") in found
    status = command(bot, f"status {short_id}")
    assert f"Access key `{late}` deleted (found when it was applied" in status


def test_disable_keeps_the_user_and_stops_every_way_in(bot, iam):
    created(bot, "dis-me", ["console", "access_key"])
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalars(select(MfaWatch.gone_at)).one() is None
    short_id = asked(command(bot, "disable dis-me"))
    approval = bot.standin.wait_for("chat.postMessage", lambda c: short_id in everything(c.args) and "approve_request" in everything(c.args))
    assert "Deactivate the access key" in everything(approval.args) and "Its permissions stay as they are" in everything(approval.args)
    click(bot, APPROVER, "approve_request", short_id, approval)
    wait_until(lambda: state(bot, short_id) == "completed", what="the disabling")
    assert iam.get_user(UserName="dis-me")["User"]["UserName"] == "dis-me"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName="dis-me")
    assert [k["Status"] for k in iam.list_access_keys(UserName="dis-me")["AccessKeyMetadata"]] == ["Inactive"]
    wait_until(lambda: dms_to(bot, REQUESTER, "was *disabled*"), what="the report")
    with bot.deps.sessionmaker.begin() as s:
        assert s.scalars(select(MfaWatch.gone_at)).one() is not None  # no MFA reminders for a user nobody can use

    # Disabled already: the plan says so, and nothing is asked of anyone.
    again = asked(command(bot, "disable dis-me"))
    wait_until(lambda: dms_to(bot, REQUESTER, "is already disabled"), what="the refusal")
    assert state(bot, again) == "failed"


def test_refusals(bot, iam):
    iam.create_user(UserName="off-hand-made")
    assert "not a user the bot created" in command(bot, "offboard off-hand-made")
    assert "Name the IAM user" in command(bot, "offboard")
    created(bot, "off-theirs", ["access_key"])
    assert "only its owner (or an approver)" in command(bot, "disable off-theirs", user=OUTSIDER)
    first = asked(command(bot, "offboard off-theirs"))
    assert f"Request {first} for `off-theirs` is still open" in command(bot, "disable off-theirs")


def test_an_approver_may_offboard_someone_elses_user_and_another_approver_decides(bot, iam):
    created(bot, "off-approver", ["access_key"])
    short_id = asked(command(bot, "offboard off-approver", user=APPROVER))
    messages = wait_until(lambda: approval_messages(bot, short_id), what="the approval message")
    assert all(m.args["channel"] != "D" + APPROVER[1:] for m in messages)  # never their own request to decide


def test_a_removal_whose_answer_was_lost_is_not_an_error_on_the_next_try(bot_behind_proxy, iam):
    bot, proxy = bot_behind_proxy
    created(bot, "off-lost", ["console", "access_key"])
    short_id = asked(command(bot, "offboard off-lost"))
    approval = bot.standin.wait_for("chat.postMessage", lambda c: short_id in everything(c.args) and "approve_request" in everything(c.args))
    proxy.lose_answer("DeleteLoginProfile")  # IAM deleted it; the bot hears a 500 and tries again later
    click(bot, APPROVER, "approve_request", short_id, approval)
    wait_until(lambda: state(bot, short_id) == "completed", timeout=60, what="the offboarding, after a retry")
    (profile,) = [d for a, _, d in applied(bot, short_id) if a == "applied:delete_login_profile"]
    assert profile["already_gone"] is True
    assert len([a for a, _, _ in applied(bot, short_id) if a == "applied:delete_user"]) == 1


def test_the_reports_disable_button_asks_for_it_and_another_approver_decides(bot, iam):
    created(bot, "off-button", ["console"])
    bot.slack.block_action(APPROVER, "report_disable_user", "off-button")
    answer = wait_until(lambda: dms_to(bot, APPROVER, "disabling: its console password is deleted"), what="the approver's answer")[0]
    short_id = asked(everything(answer.args))
    messages = wait_until(lambda: approval_messages(bot, short_id), what="the approval message")
    assert {m.args["channel"] for m in messages} == {"DAPPROVER2"}  # never their own request to decide
    click(bot, "UAPPROVER2", "approve_request", short_id, messages[0])
    wait_until(lambda: state(bot, short_id) == "completed", what="the disabling")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName="off-button")


# ---------------------------------------------------------------- when the owner leaves

LEAVER = "ULEAVER001"


def offboard_requests(bot: RunningBot) -> list[tuple[str, str, str]]:
    with bot.deps.sessionmaker.begin() as s:
        return [(r.short_id, r.user_name, r.requester_id) for r in s.scalars(
            select(AccessRequest).where(AccessRequest.kind == "offboard").order_by(AccessRequest.id))]


def test_a_deactivated_owner_gets_each_of_their_users_offered_for_offboarding(bot, iam):
    created(bot, "left-a", ["access_key"], owner=LEAVER)
    created(bot, "left-b", ["console"], owner=LEAVER)
    created(bot, "stays", ["access_key"])
    bot.slack.event({"type": "user_change", "user": {"id": LEAVER, "deleted": True, "name": "leaver"}, "event_ts": "2.2"})
    filed = wait_until(lambda: len(offboard_requests(bot)) == 2 and offboard_requests(bot), what="the offboarding requests")
    assert sorted(n for _, n, _ in filed) == ["left-a", "left-b"] and {r for _, _, r in filed} == {"iam-bot"}
    for short_id, _, _ in filed:
        message = wait_until(lambda sid=short_id: approval_messages(bot, sid), what="the approval message")[0]
        text = everything(message.args)
        assert "left the workspace" in text and LEAVER in text and "Delete the user" in text
        assert "Offboarding request" in text and "from iam-bot" in text

    # The same news again (Slack retries, the daily check) files nothing more.
    bot.slack.event({"type": "user_change", "user": {"id": LEAVER, "deleted": True}, "event_ts": "2.3"})
    bot.settle()
    assert bot.deps.departures.check_owners() == 0
    assert len(offboard_requests(bot)) == 2

    # "Disable now" on one: disabled at once (an approver asked; only taking access away), its offboarding still waits.
    short_id = filed[0][0]
    message = approval_messages(bot, short_id)[0]
    assert [el["action_id"] for b in message.args["blocks"] if b["type"] == "actions" for el in b["elements"]][-1] == "disable_now"
    user = [n for s, n, _ in filed if s == short_id][0]
    click(bot, APPROVER, "disable_now", short_id, message)
    wait_until(lambda: told(bot, APPROVER, f"`{user}` is disabled now"), what="the approver's answer")
    wait_until(lambda: [k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] in (["Inactive"], []), what="the disabling")
    assert state(bot, short_id) == "pending"
    with bot.deps.sessionmaker.begin() as s:
        (disabled,) = s.scalars(select(AccessRequest).where(AccessRequest.kind == "disable_now")).all()
        assert disabled.requester_id == APPROVER and disabled.rule_name == "approver-disable-now"
    click(bot, OUTSIDER, "disable_now", short_id, message)
    wait_until(lambda: told(bot, OUTSIDER, "Only designated approvers"), what="the outsider's refusal")

    # An approver's yes offboards it; nobody is left to tell but the approvers.
    click(bot, APPROVER, "approve_request", short_id, message)
    wait_until(lambda: state(bot, short_id) == "completed", what="the offboarding")
    wait_until(lambda: dms_to(bot, APPROVER, "was *offboarded*"), what="the report")


def test_the_daily_check_finds_owners_who_left_without_an_event(bot, iam):
    created(bot, "left-quiet", ["access_key"], owner=LEAVER)
    assert bot.deps.departures.check_owners() == 0  # still here
    bot.standin.set_user(LEAVER, deleted=True)
    assert bot.deps.departures.check_owners() == 1
    assert [n for _, n, _ in offboard_requests(bot)] == ["left-quiet"]
    assert bot.deps.departures.check_owners() == 0


def test_a_user_deleted_by_hand_after_the_approval_is_offboarded_without_an_error(bot, iam):
    created(bot, "off-hand-gone", ["access_key"])
    short_id = asked(command(bot, "offboard off-hand-gone"))
    approval = bot.standin.wait_for("chat.postMessage", lambda c: short_id in everything(c.args) and "approve_request" in everything(c.args))
    for key in iam.list_access_keys(UserName="off-hand-gone")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="off-hand-gone", AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName="off-hand-gone")
    click(bot, APPROVER, "approve_request", short_id, approval)
    wait_until(lambda: state(bot, short_id) == "completed", what="the offboarding")
    assert all(d.get("already_gone") for _, _, d in applied(bot, short_id))


def test_disable_instead_keeps_the_user_and_denies_the_offboarding(bot, iam):
    created(bot, "off-instead", ["console", "access_key"])
    short_id = asked(command(bot, "offboard off-instead"))
    approval = bot.standin.wait_for("chat.postMessage", lambda c: short_id in everything(c.args) and "disable_instead" in everything(c.args))
    click(bot, APPROVER, "disable_instead", short_id, approval)
    wait_until(lambda: told(bot, APPROVER, "is disabled now instead"), what="the approver's answer")
    def disablings() -> list[AccessRequest]:
        with bot.deps.sessionmaker.begin() as s:
            rows = list(s.scalars(select(AccessRequest).where(AccessRequest.kind == "disable_now", AccessRequest.state == RequestState.COMPLETED)))
            s.expunge_all()
            return rows

    (disabled,) = wait_until(disablings, what="the disabling")
    assert disabled.requester_id == APPROVER and disabled.rule_name == "approver-disable-now"
    assert state(bot, short_id) == "denied"
    iam.get_user(UserName="off-instead")  # kept
    assert [k["Status"] for k in iam.list_access_keys(UserName="off-instead")["AccessKeyMetadata"]] == ["Inactive"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName="off-instead")
    wait_until(lambda: dms_to(bot, REQUESTER, "Disabled instead"), what="the requester told why the offboarding was denied")
