"""The only package that talks to AWS: the IAM gateway (idempotent writes, quick checks, plan facts), its errors and caches."""
