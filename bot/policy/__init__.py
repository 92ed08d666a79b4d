"""Pure judgement of requests and plans: the rulebook and its file, guardrails, risk, who may approve, policy documents."""
