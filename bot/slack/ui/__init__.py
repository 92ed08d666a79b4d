"""Pure Block Kit builders: domain objects in, Slack payload dicts out. No Web API calls here."""
