"""Undo of an approved INSERT, UPDATE or DELETE: its rows kept with it (pgbot.undo), the inverse a new change.
Imports core.db, core.sqlguard, core.messages, core.permissions, core.approvals.decisions; approvals imports only capture.
"""
