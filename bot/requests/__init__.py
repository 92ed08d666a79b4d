"""The request lifecycle: transitions, use cases that take the session, the planner, the store and read queries, form validation."""
