"""Backups and restores with pg_dump / pg_restore: find a client, dump with a manifest, verify, restore.
May import errors, config, db, approvals (executors) and diagnostics (locks); never tools, prompt or agent.

The tools and approval executors that use this live in :mod:`core.tools.backups`; the command line
in :mod:`bot.backup_command`.

    clients   which pg_dump / pg_restore (never older than the server)
    conninfo  DSN → password-free URI + environment; scrubbing of child output
    inspect   server facts, tables, and whether the requester's role may read them all
    manifest  the backup folder, manifests, listing, safe file names
    create    pg_dump on an exported snapshot, exact row counts, sha256, atomic rename
    verify    manifest, size, sha256, header, pg_restore --list
    restore   into a new database, or over the original in one transaction; counts compared
    proc      the child process runner (no shell, killed on timeout or cancel)
"""
