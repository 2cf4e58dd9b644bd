"""Schema migrations: ordered up/down SQL files, checked before approval, applied and recorded by pgbot.
May import errors, config, sqlguard, db and approvals (audit); never tools, prompt or agent.

``files`` reads and writes the folder, ``analysis`` explains each statement (locks, rewrites, data loss),
``check`` tries a migration in a transaction that is always rolled back, ``store`` is the bot's
``pgbot.migrations`` table, ``runner`` applies one migration and plans ``pgbot migrate up/down``.
"""
