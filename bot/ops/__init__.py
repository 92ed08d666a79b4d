"""For operators: `iam-bot doctor` (every setting checked against Slack, the database and AWS) and the bot's own IAM policy."""
