"""iam-bot core: settings, lifecycle, provisioning, vault and Slack UI builders."""
