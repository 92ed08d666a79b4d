"""bot.requests.validation: every rule, with the exact field key it reports, plus property tests."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.spec import RequestSpec
from bot.requests.validation import RawForm, parse_tags, path_error, user_name_error, validate_form

OWNER = "U012ABCDEF"
ARN_AWS = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ARN_CUSTOM = "arn:aws:iam::123456789012:policy/team/PaymentsRead"
ALL_FIELDS = {
    "user_name",
    "access_type",
    "groups",
    "policies",
    "copy_from",
    "path",
    "tags",
    "boundary",
    "owner",
    "reason",
}


def form(**overrides: object) -> RawForm:
    """A valid form; each test changes one field."""
    base: dict[str, object] = {
        "user_name": "jane.doe",
        "access_types": ("console",),
        "owner_id": OWNER,
        "reason": "Needs read access for the payments audit.",
    }
    base.update(overrides)
    return RawForm(**base)  # type: ignore[arg-type]


def accepted(**overrides: object) -> RequestSpec:
    spec, errors = validate_form(form(**overrides))
    assert errors == {}, errors
    assert isinstance(spec, RequestSpec)
    return spec


def rejected(**overrides: object) -> dict[str, str]:
    spec, errors = validate_form(form(**overrides))
    assert spec is None
    assert errors, "a rejected form must say why"
    return errors


def only_error(field: str, **overrides: object) -> str:
    errors = rejected(**overrides)
    assert set(errors) == {field}, errors
    assert errors[field].strip()
    return errors[field]


def test_base_form_is_valid() -> None:
    spec = accepted()
    assert spec.user_name == "jane.doe"
    assert spec.path == "/"
    assert spec.tags == ()


# ---------------------------------------------------------------- user name

@pytest.mark.parametrize(
    "name",
    [
        "a",
        "Z",
        "7",
        "A" * 64,
        "jane.doe",
        "a+b=c,d.e@f_g-h",
        "+=,.@_-",
        "  jane.doe  ",  # surrounding whitespace is stripped
    ],
)
def test_user_name_accepted(name: str) -> None:
    assert accepted(user_name=name).user_name == name.strip()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "A" * 65,
        "jane doe",
        "jane\tdoe",
        "jané",
        "ユーザー",
        "jane\u200bdoe",  # zero-width space
        "jane/doe",
        "jane:doe",
        "jane*",
        "jane\x00",
        "<!channel>",
        "ｊａｎｅ",  # fullwidth letters
    ],
)
def test_user_name_rejected(name: str) -> None:
    only_error("user_name", user_name=name)


def test_user_name_error_messages() -> None:
    assert user_name_error("jane") is None
    assert user_name_error("A" * 64) is None
    assert user_name_error("") == "Enter a user name."
    assert "65" in (user_name_error("A" * 65) or "")
    assert "no spaces" in (user_name_error("a b") or "")


@pytest.mark.parametrize("check,value", [(user_name_error, "jane\n"), (path_error, "/a/\n")])
def test_validators_reject_trailing_newline(check, value: str) -> None:
    assert check(value) is not None


# ---------------------------------------------------------------- access type

@pytest.mark.parametrize(
    "types,console,key",
    [
        (("console",), True, False),
        (("access_key",), False, True),
        (("console", "access_key"), True, True),
        (("access_key", "console", "console"), True, True),
    ],
)
def test_access_type_accepted(types: tuple[str, ...], console: bool, key: bool) -> None:
    spec = accepted(access_types=types)
    assert (spec.console_access, spec.access_key) == (console, key)


@pytest.mark.parametrize("types", [(), ("",), ("Console access",), ("CONSOLE",), ("password",)])
def test_access_type_required(types: tuple[str, ...]) -> None:
    only_error("access_type", access_types=types)


# ---------------------------------------------------------------- path

@pytest.mark.parametrize(
    "raw,expected",
    [
        ("", "/"),
        ("   ", "/"),
        ("/", "/"),
        ("/a/b/", "/a/b/"),
        ("/engineering/", "/engineering/"),
        (" /engineering/ ", "/engineering/"),
        ("/a.b-c_d+e=f@g!~/", "/a.b-c_d+e=f@g!~/"),
        ("/" + "a" * 510 + "/", "/" + "a" * 510 + "/"),  # 512 characters
    ],
)
def test_path_accepted(raw: str, expected: str) -> None:
    assert accepted(path=raw).path == expected


@pytest.mark.parametrize(
    "path",
    [
        "a/",  # no leading slash
        "/a",  # no trailing slash
        "a",
        "//",
        "/a//b/",
        "///",
        "/" + "a" * 511 + "/",  # 513 characters
        "/a b/",
        "/a\x00/",
        "/a\x7f/",
        "/a\tb/",
        "/é/",
    ],
)
def test_path_rejected(path: str) -> None:
    only_error("path", path=path)


def test_path_error_messages() -> None:
    assert path_error("/") is None
    assert "512" in (path_error("/" + "a" * 511 + "/") or "")
    assert "//" in (path_error("/a//b/") or "")


# ---------------------------------------------------------------- tags

@pytest.mark.parametrize(
    "text,expected",
    [
        ("", ()),
        ("\n\n   \n", ()),
        ("team=payments", (("team", "payments"),)),
        ("\n  team = payments  \n\n\ncost-center=1234\n", (("team", "payments"), ("cost-center", "1234"))),
        ("empty=", (("empty", ""),)),
        ("empty =   ", (("empty", ""),)),
        ("expr=a=b==c", (("expr", "a=b==c"),)),
        ("Team Name=Payments and Risk", (("Team Name", "Payments and Risk"),)),
        ("k_.:/=+-@=v_.:/=+-@", (("k_.:/", "+-@=v_.:/=+-@"),)),
        ("équipe=café", (("équipe", "café"),)),
        ("a=1\r\nb=2", (("a", "1"), ("b", "2"))),
        ("K" * 128 + "=" + "v" * 256, (("K" * 128, "v" * 256),)),
        ("awsome=yes", (("awsome", "yes"),)),  # only the `aws:` prefix is reserved
    ],
)
def test_parse_tags_accepted(text: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_tags(text) == (expected, None)
    assert accepted(tags=text).tags == expected


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("novalue", "Line 1: write each tag as key=value"),
        ("a=b\n\nnovalue", "Line 3:"),
        ("=value", "Line 1: the tag key is empty"),
        ("   =value", "the tag key is empty"),
        ("K" * 129 + "=v", "at most 128"),
        ("k=" + "v" * 257, "at most 256"),
        ("aws:owner=me", "reserved by AWS"),
        ("AWS:owner=me", "reserved by AWS"),
        ("Aws:Owner=me", "reserved by AWS"),
        ("  aWs:x = y", "reserved by AWS"),
        ("team=pay!ments", "'!'"),
        ("te#am=payments", "'#'"),
        ("team=<!channel>", "'<'"),
        ("team=a\tb", "'\\t'"),
        ("team=a,b", "','"),
        ("team=a;b", "';'"),
        ("team=x\nTEAM=y", "Line 2: the key `TEAM` appears twice"),
        ("Team=x\nteam=y", "appears twice"),
        ("\n".join(f"k{i}=v" for i in range(50)), "At most 49 tags; you gave 50"),
    ],
)
def test_parse_tags_rejected(text: str, fragment: str) -> None:
    tags, error = parse_tags(text)
    assert tags == ()
    assert error is not None and fragment in error
    assert only_error("tags", tags=text) == error


def test_forty_nine_tags_are_accepted() -> None:
    text = "\n".join(f"k{i}=v" for i in range(49))
    assert len(accepted(tags=text).tags) == 49


@pytest.mark.parametrize("key", ["iam-bot:request", "IAM-BOT:REQUEST", "Iam-Bot:Request"])
def test_reserved_bot_tag_rejected(key: str) -> None:
    assert "reserved by the bot" in only_error("tags", tags=f"team=x\n{key}=R123")


def test_accepted_tags_leave_room_for_the_bot_marker_tag() -> None:
    from bot.iam.gateway import MARKER_TAG

    spec = accepted(tags="\n".join(f"k{i}=v" for i in range(49)))
    assert all(k.lower() != MARKER_TAG for k, _ in spec.tags)
    assert len(spec.tags) + 1 <= 50  # IAM: at most 50 tags per user, the marker included


# ---------------------------------------------------------------- groups and policies

def test_groups_are_stripped_and_deduplicated_in_order() -> None:
    spec = accepted(groups=(" dev ", "admins", "", "dev", "   ", "ops", "admins"))
    assert spec.groups == ("dev", "admins", "ops")


@pytest.mark.parametrize(
    "groups",
    [
        ("has space",),
        ("a/b",),
        ("G" * 129,),
        ("grüppe",),
        ("ok", "<!channel>"),
    ],
)
def test_group_names_rejected(groups: tuple[str, ...]) -> None:
    assert "Pick groups" in only_error("groups", groups=groups)


def test_group_name_of_128_accepted() -> None:
    assert accepted(groups=("G" * 128,)).groups == ("G" * 128,)


def test_ten_groups_accepted_eleven_rejected() -> None:
    ten = tuple(f"group{i}" for i in range(10))
    assert accepted(groups=ten).groups == ten
    # Duplicates do not count against the limit.
    assert accepted(groups=ten + ("group0", "group9")).groups == ten
    assert "at most 10" in only_error("groups", groups=ten + ("group10",))


@pytest.mark.parametrize(
    "arn",
    [
        ARN_AWS,
        ARN_CUSTOM,
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws-us-gov:iam::aws:policy/ReadOnlyAccess",
        "arn:aws-cn:iam::123456789012:policy/X",
        "arn:aws:iam::123456789012:policy/" + "p" * 1500,
    ],
)
def test_policy_arn_accepted(arn: str) -> None:
    assert accepted(policy_arns=(f" {arn} ",)).policy_arns == (arn,)
    assert accepted(permissions_boundary=f" {arn} ").permissions_boundary == arn


@pytest.mark.parametrize(
    "arn",
    [
        "ReadOnlyAccess",
        "arn:aws:iam::12345:policy/X",  # account ID too short
        "arn:aws:iam::1234567890123:policy/X",  # too long
        "arn:aws:iam::aws:role/X",
        "arn:aws:iam::aws:policy/",
        "arn:aws:iam::aws:policy/has space",
        "arn:aws:s3:::bucket",
        "arn:AWS:iam::aws:policy/X",
        "arn:aws:iam::123456789012:policy/" + "p" * 1501,
        "arn:aws:iam::aws:policy/é",
    ],
)
def test_policy_arn_rejected(arn: str) -> None:
    assert "Pick managed policies" in only_error("policies", policy_arns=(ARN_AWS, arn))
    assert "Pick a managed policy" in only_error("boundary", permissions_boundary=arn)


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:policy/X", "arn:aws:iam::１２３４５６７８９０１２:policy/X"],
)
def test_policy_arn_requires_ascii_account_id(arn: str) -> None:
    assert "policies" in rejected(policy_arns=(arn,))


def test_policies_stripped_deduplicated_and_limited() -> None:
    twenty = tuple(f"arn:aws:iam::123456789012:policy/p{i}" for i in range(20))
    assert accepted(policy_arns=twenty + (" " + twenty[0], "")).policy_arns == twenty
    assert "at most 20" in only_error("policies", policy_arns=twenty + ("arn:aws:iam::aws:policy/p20",))


def test_blank_boundary_and_copy_from_are_none() -> None:
    spec = accepted(permissions_boundary="   ", copy_from="  ")
    assert spec.permissions_boundary is None
    assert spec.copy_from is None


# ---------------------------------------------------------------- copy from, owner, reason

@pytest.mark.parametrize("source", ["jane.doe", "JANE.DOE", " Jane.Doe "])
def test_copy_from_self_rejected(source: str) -> None:
    assert "itself" in only_error("copy_from", copy_from=source)


@pytest.mark.parametrize("source", ["has space", "a" * 65, "<@U123>"])
def test_copy_from_must_be_a_user_name(source: str) -> None:
    assert "Pick an existing user" in only_error("copy_from", copy_from=source)


def test_copy_from_other_user_accepted() -> None:
    assert accepted(copy_from=" john.smith ").copy_from == "john.smith"


@pytest.mark.parametrize("owner", ["U012ABCDEF", "W012ABCDEF", "U12", " U012ABCDEF ", "U" + "A" * 20])
def test_owner_accepted(owner: str) -> None:
    assert accepted(owner_id=owner).owner_id == owner.strip()


@pytest.mark.parametrize(
    "owner",
    ["", "   ", "u012abcdef", "C012ABCDEF", "<@U012ABCDEF>", "U1", "U" + "A" * 21, "jane.doe", "U012-ABC", "U０１２"],
)
def test_owner_must_be_a_slack_user_id(owner: str) -> None:
    only_error("owner", owner_id=owner)


@pytest.mark.parametrize("reason", ["", "   ", "\n\t\n", "x" * 3001, " " + "x" * 3001 + " "])
def test_reason_rejected(reason: str) -> None:
    only_error("reason", reason=reason)


@pytest.mark.parametrize("reason", ["x", "x" * 3000, "  " + "x" * 3000 + "\n\n"])
def test_reason_accepted(reason: str) -> None:
    assert accepted(reason=reason).reason == reason.strip()


# ---------------------------------------------------------------- whole form

def test_fully_valid_form_yields_normalised_spec() -> None:
    raw = RawForm(
        user_name="  svc.payments  ",
        access_types=("access_key", "console"),
        groups=("dev", " admins ", "dev", ""),
        policy_arns=(ARN_CUSTOM, f"  {ARN_AWS}", ARN_CUSTOM),
        copy_from=" jane.doe ",
        path=" /engineering/payments/ ",
        tags="\n team = payments \n\ncost-center=1234\n",
        permissions_boundary=f" {ARN_AWS} ",
        owner_id=" U012ABCDEF ",
        reason="\n  For the nightly settlement job.  \n",
    )
    spec, errors = validate_form(raw)
    assert errors == {}
    assert spec == RequestSpec(
        user_name="svc.payments",
        console_access=True,
        access_key=True,
        owner_id="U012ABCDEF",
        reason="For the nightly settlement job.",
        groups=("dev", "admins"),
        policy_arns=(ARN_CUSTOM, ARN_AWS),
        copy_from="jane.doe",
        path="/engineering/payments/",
        tags=(("team", "payments"), ("cost-center", "1234")),
        permissions_boundary=ARN_AWS,
    )
    assert spec.access_types == ["Console access", "Access key"]


def test_every_field_reports_under_its_own_key() -> None:
    spec, errors = validate_form(
        RawForm(
            user_name="bad name",
            access_types=(),
            groups=("bad group",),
            policy_arns=("nope",),
            copy_from="bad name",
            path="nope",
            tags="nope",
            permissions_boundary="nope",
            owner_id="nope",
            reason="",
        )
    )
    assert spec is None
    assert set(errors) == ALL_FIELDS
    assert all(isinstance(m, str) and m for m in errors.values())


def test_error_keys_are_the_request_modal_block_ids() -> None:
    """Slack shows `errors` only under blocks whose block_id matches the key."""
    from bot.slack.ui import request_modal

    modal = request_modal(requester_id=OWNER)
    input_ids = {b["block_id"] for b in modal["blocks"] if b["type"] == "input"}
    assert ALL_FIELDS <= input_ids


# ---------------------------------------------------------------- properties

ANY_CHAR = st.characters(exclude_categories=())  # includes surrogates, controls, unassigned
odd_text = st.text(alphabet=ANY_CHAR, max_size=80)
huge_text = st.builds(lambda s, n: (s * n)[:10_000], st.text(alphabet=ANY_CHAR, min_size=1, max_size=40), st.integers(0, 10_000))
any_text = st.one_of(st.text(max_size=80), odd_text, huge_text)
any_list = st.lists(any_text, max_size=25).map(tuple)
arbitrary_forms = st.builds(
    RawForm,
    user_name=any_text,
    access_types=st.one_of(any_list, st.lists(st.sampled_from(["console", "access_key", ""]), max_size=3).map(tuple)),
    groups=any_list,
    policy_arns=any_list,
    copy_from=any_text,
    path=any_text,
    tags=any_text,
    permissions_boundary=any_text,
    owner_id=any_text,
    reason=any_text,
)

PROPS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_outcome(raw: RawForm) -> RequestSpec | None:
    spec, errors = validate_form(raw)
    assert isinstance(errors, dict)
    if spec is None:
        assert errors, "rejected without a reason"
        assert set(errors) <= ALL_FIELDS
        assert all(isinstance(m, str) and m for m in errors.values())
    else:
        assert isinstance(spec, RequestSpec)
        assert errors == {}
    return spec


@PROPS
@given(arbitrary_forms)
def test_validate_form_never_raises_and_returns_exactly_one_outcome(raw: RawForm) -> None:
    _check_outcome(raw)


def _roundtrip(spec: RequestSpec) -> None:
    payload = spec.to_payload()
    assert RequestSpec.from_payload(payload) == spec
    assert RequestSpec.from_payload(json.loads(json.dumps(payload))) == spec


NAME_CHARS = string.ascii_letters + string.digits + "+=,.@_-"
user_names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=64)
TAG_KEY_CHARS = string.ascii_letters + string.digits + "_.:/+-@"
tag_keys = st.builds(
    lambda a, mid: a + mid,
    st.sampled_from(TAG_KEY_CHARS),
    st.text(alphabet=TAG_KEY_CHARS + " ", max_size=20),
).map(str.strip)
tag_values = st.text(alphabet=st.one_of(st.sampled_from(TAG_KEY_CHARS + " ="), st.characters(categories=["L", "N"])), max_size=40).map(
    str.strip
)


def _unique_keys(pairs: list[tuple[str, str]]) -> bool:
    keys = [k.lower() for k, _ in pairs]
    return len(keys) == len(set(keys))


valid_tag_lists = (
    st.lists(st.tuples(tag_keys, tag_values), max_size=50)
    .map(lambda pairs: [(k, v) for k, v in pairs if not k.lower().startswith("aws:") and k.lower() != "iam-bot:request"])
    .filter(_unique_keys)
)
policy_arns = st.one_of(
    st.builds(lambda n: f"arn:aws:iam::aws:policy/{n}", st.text(alphabet=NAME_CHARS + "/", min_size=1, max_size=60)),
    st.builds(
        lambda acct, n: f"arn:aws:iam::{acct}:policy/{n}",
        st.text(alphabet=string.digits, min_size=12, max_size=12),
        st.text(alphabet=NAME_CHARS, min_size=1, max_size=60),
    ),
)
nearly_valid_forms = st.builds(
    RawForm,
    user_name=user_names,
    access_types=st.lists(st.sampled_from(["console", "access_key"]), min_size=1, max_size=2).map(tuple),
    groups=st.lists(st.text(alphabet=NAME_CHARS, min_size=1, max_size=30), max_size=10).map(tuple),
    policy_arns=st.lists(policy_arns, max_size=20).map(tuple),
    copy_from=st.one_of(st.just(""), user_names),
    path=st.one_of(st.just(""), st.just("/"), st.text(alphabet=NAME_CHARS, min_size=1, max_size=20).map(lambda s: f"/{s}/")),
    tags=valid_tag_lists.map(lambda pairs: "\n".join(f"{k}={v}" for k, v in pairs)),
    permissions_boundary=st.one_of(st.just(""), policy_arns),
    owner_id=st.text(alphabet=string.ascii_uppercase + string.digits, min_size=2, max_size=20).map(lambda s: "U" + s),
    reason=st.text(min_size=1, max_size=300),
)


@PROPS
@given(nearly_valid_forms)
def test_accepted_specs_round_trip_through_payload_and_json(raw: RawForm) -> None:
    spec = _check_outcome(raw)
    if spec is not None:
        _roundtrip(spec)


@settings(max_examples=60, deadline=None, database=None)
@given(arbitrary_forms)
def test_any_accepted_arbitrary_spec_round_trips(raw: RawForm) -> None:
    spec = _check_outcome(raw)
    if spec is not None:
        _roundtrip(spec)


def test_nearly_valid_strategy_is_mostly_accepted() -> None:
    """Guard: the round-trip property above must really see accepted specs."""
    seen: list[bool] = []

    @settings(max_examples=50, deadline=None, database=None)
    @given(nearly_valid_forms)
    def collect(raw: RawForm) -> None:
        seen.append(validate_form(raw)[0] is not None)

    collect()
    assert sum(seen) >= len(seen) // 2


@settings(max_examples=150, deadline=None, database=None)
@given(valid_tag_lists)
def test_parse_tags_round_trips(pairs: list[tuple[str, str]]) -> None:
    text = "\n".join(f"{k}={v}" for k, v in pairs)
    assert parse_tags(text) == (tuple(pairs), None)
    # Blank lines and surrounding spaces change nothing.
    padded = "\n\n".join(f"  {k} =  {v}  " for k, v in pairs) + "\n\n"
    assert parse_tags(padded) == (tuple(pairs), None)
