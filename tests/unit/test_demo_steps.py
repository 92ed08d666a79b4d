"""bot.demo.journey's step runner: a step whose check fails stops the demo and says which."""

from __future__ import annotations

import io

from bot.demo.journey import Step, Transcript, run_steps


def test_steps_run_in_order_and_stop_at_the_first_unverified_one() -> None:
    ran = []

    def ok(step: Step) -> None:
        ran.append("ok")
        step.say("something shown")
        step.check(True, "it happened")

    def unverified(step: Step) -> None:
        ran.append("unverified")
        step.check(True, "the first half happened")
        step.check(False, "the user exists in IAM")

    def never(step: Step) -> None:
        ran.append("never")

    out = io.StringIO()
    results = run_steps([("first", ok), ("second", unverified), ("third", never)], Transcript(out))
    assert ran == ["ok", "unverified"]
    assert [r.ok for r in results] == [True, False]
    text = out.getvalue()
    assert "── 1. first" in text and "  something shown\n  ✓ it happened" in text
    assert "── 2. second" in text and "FAILED" in text and "✓ the first half happened" in text
    assert "✗ not verified: the user exists in IAM" in text and "third" not in text


def test_an_error_in_a_step_is_a_failed_step_not_a_traceback() -> None:
    def broken(step: Step) -> None:
        raise KeyError("view")

    out = io.StringIO()
    results = run_steps([("broken", broken)], Transcript(out))
    assert not results[0].ok and "✗ KeyError: 'view'" in out.getvalue()


def test_the_transcript_masks_a_forbidden_value_whatever_prints_it() -> None:
    out = io.StringIO()
    transcript = Transcript(out)
    transcript.forbid("hunter2-secret", "")
    transcript.write(["password is hunter2-secret", "nothing here"])
    assert "hunter2-secret" not in out.getvalue() and "password is ●" in out.getvalue()
