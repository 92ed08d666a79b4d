"""bot.credentials.passwords: generated passwords satisfy every IAM password policy and are safe to display."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.credentials.passwords import SYMBOLS, PasswordPolicy, generate_password, satisfies

FORBIDDEN = set("&<>`'\",")
# IAM's allowed symbols: ! @ # $ % ^ & * ( ) _ + - = [ ] { } | '
IAM_SYMBOLS = set("!@#$%^&*()_+-=[]{}|'")
FLAG_COMBOS = list(itertools.product([False, True], repeat=4))


def _classes(pw: str) -> dict[str, bool]:
    return {
        "upper": any(c in string.ascii_uppercase for c in pw),
        "lower": any(c in string.ascii_lowercase for c in pw),
        "digit": any(c in string.digits for c in pw),
        "symbol": any(c in IAM_SYMBOLS for c in pw),
    }


def _policy(min_len: int, flags: tuple[bool, bool, bool, bool]) -> PasswordPolicy:
    sym, num, up, low = flags
    return PasswordPolicy(
        minimum_length=min_len, require_symbols=sym, require_numbers=num, require_uppercase=up, require_lowercase=low
    )


def _check(pw: str, policy: PasswordPolicy) -> None:
    assert satisfies(pw, policy)
    assert policy.minimum_length <= len(pw) <= 128
    assert all(_classes(pw).values()), pw
    assert not FORBIDDEN & set(pw), pw
    assert set(pw) <= set(string.ascii_letters + string.digits) | IAM_SYMBOLS


@pytest.mark.parametrize("flags", FLAG_COMBOS, ids=lambda f: "".join("SNUL"[i] if b else "-" for i, b in enumerate(f)))
@settings(max_examples=25, deadline=None, database=None)
@given(min_len=st.integers(6, 128))
def test_generated_password_satisfies_policy(flags: tuple[bool, bool, bool, bool], min_len: int) -> None:
    policy = _policy(min_len, flags)
    _check(generate_password(policy), policy)


@pytest.mark.parametrize("min_len", [6, 8, 24, 25, 127, 128])
@pytest.mark.parametrize("flags", [(True, True, True, True), (False, False, False, False)])
def test_boundary_lengths(min_len: int, flags: tuple[bool, bool, bool, bool]) -> None:
    policy = _policy(min_len, flags)
    pw = generate_password(policy)
    _check(pw, policy)
    assert len(pw) == max(24, min_len)


@settings(max_examples=60, deadline=None, database=None)
@given(length=st.integers(0, 300), min_len=st.integers(6, 128))
def test_length_argument(length: int, min_len: int) -> None:
    policy = _policy(min_len, (True, True, True, True))
    pw = generate_password(policy, length=length)
    assert len(pw) == min(max(length, min_len, 4), 128)
    _check(pw, policy)


def test_symbols_constant_excludes_display_hostile_characters() -> None:
    assert not FORBIDDEN & set(SYMBOLS)
    assert set(SYMBOLS) <= IAM_SYMBOLS


def test_two_calls_differ() -> None:
    policy = PasswordPolicy()
    assert generate_password(policy) != generate_password(policy)
    assert len({generate_password(policy) for _ in range(20)}) == 20


def test_class_positions_are_shuffled() -> None:
    """The four guaranteed characters must not sit at fixed positions."""
    firsts = {generate_password(PasswordPolicy(), length=4)[0] in string.ascii_uppercase for _ in range(200)}
    assert firsts == {True, False}


@pytest.mark.parametrize(
    "pw,policy,ok",
    [
        ("Abc1!xyz", PasswordPolicy(minimum_length=8), True),
        ("Abc1!xy", PasswordPolicy(minimum_length=8), False),
        ("abc1!xyz", PasswordPolicy(require_uppercase=True), False),
        ("ABC1!XYZ", PasswordPolicy(require_lowercase=True), False),
        ("Abcd!xyz", PasswordPolicy(require_numbers=True), False),
        ("Abc12xyz", PasswordPolicy(require_symbols=True), False),
        ("Abc12xy&", PasswordPolicy(require_symbols=True), False),  # & is not a symbol we count
        ("abcdefgh", PasswordPolicy(), True),
        ("Abc1!xyz", _policy(8, (True, True, True, True)), True),
    ],
)
def test_satisfies_table(pw: str, policy: PasswordPolicy, ok: bool) -> None:
    assert satisfies(pw, policy) is ok


@settings(max_examples=300, deadline=None, database=None)
@given(
    min_len=st.integers(6, 128),
    length=st.integers(0, 200),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_never_starts_with_what_a_spreadsheet_evaluates(min_len: int, length: int, flags: tuple[bool, bool, bool, bool]) -> None:
    """The credentials CSV writes the password exactly: it must never be a cell a spreadsheet runs."""
    policy = _policy(min_len, flags)
    pw = generate_password(policy, length=length)
    _check(pw, policy)
    assert pw[0] not in "=+-@\t\r", pw


def test_the_shortest_passwords_never_start_with_a_formula_character_either() -> None:
    """Four characters, one per class: the symbol (often one of = + - @) is never put first."""
    pws = [generate_password(PasswordPolicy(), length=4) for _ in range(2000)]
    assert not [pw for pw in pws if pw[0] in "=+-@"]
    assert {pw[0] in string.ascii_uppercase for pw in pws} == {True, False}  # still shuffled
    assert any(pw[0] in SYMBOLS for pw in pws)  # a harmless symbol (! # $ ...) may still come first
