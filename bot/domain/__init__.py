"""The vocabulary of the bot, as plain values: what is asked (spec), what IAM holds (facts),
what will be done (plan), and the read models the Slack builders draw (views). Pure: no I/O."""
