"""Diagnostics: EXPLAIN interpreted in plain words, a health check, and index advice.
May import errors, messages, sqlguard, db and approvals (index builds); never tools, prompt or agent.

Every check returns :class:`~core.diagnostics.findings.Finding` objects (severity, what, why it matters, what
to do) rendered to text here in core, so Slack, Discord, the terminal and the ``pgbot`` command show the same
words. Nothing here changes a database: reads run in READ ONLY transactions under the asking role, and an
index is only ever built through an approved action (:mod:`core.diagnostics.index_build`).
"""
