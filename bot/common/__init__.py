"""What every part of the bot shares: constants, Slack id kinds, the clock, errors, compare-and-set, log context."""
