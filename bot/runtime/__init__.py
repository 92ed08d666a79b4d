"""What `iam-bot serve` runs: settings, database and migrations, the composition root, Bolt middleware, runners, logging."""
