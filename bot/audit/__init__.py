"""The hash-chained audit trail: every event, in the transaction of its change; verify and export."""
