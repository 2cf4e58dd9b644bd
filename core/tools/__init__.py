"""The tools the model and slash commands call, their registry, and the EXPLAIN-first check of a query.
May import approvals, backups, diagnostics, migrations, schedules and everything below them; never prompt or agent.
"""
