"""What a person's action or a state change sets in motion: each workflow opens its transactions at
the edge, calls the use cases, and talks to Slack (through the notifier) after they commit.
Handlers call exactly one workflow method per Slack delivery."""
