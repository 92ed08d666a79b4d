"""`iam-bot demo`: the whole journey on this machine, with no Slack workspace and no AWS account.

It ships in the package (not in tests/) so that `pip install '.[demo]'` then `iam-bot demo` works;
what it needs (moto, Flask, requests) comes with the [demo] extra only, never the production
install or image. Here: the Slack Web API stand-in (`standin`), the signed-request sender playing
Slack's side (`slack_sender`), and the journey that drives the real app through them (`journey`).
The test suite uses the same stand-in and sender.
"""
