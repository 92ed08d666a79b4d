"""iam-bot's core, grouped by domain; each layer imports only those below it (pyproject.toml's
import-linter contracts, checked by `make test`):

cli -> demo | ops -> runtime -> (handlers) -> jobs -> workflows -> requests -> slack
    -> policy | iam | credentials | audit -> domain -> common -> (models)

Every request is a plan (bot.domain.plan): resolved against IAM by a job, judged, approved by its
digest, and applied exactly by another job. README.md, "Development", says what each package holds.
"""
