"""Undo of an approved INSERT, UPDATE or DELETE: its rows kept with it (pgbot.undo), the inverse a new change.
May import core.db, core.sqlguard, core.messages, core.display, core.permissions, core.approvals' audit, pending
and executors; core.approvals.decisions imports capture and keep from here, the Undo click is core.agent's.
"""
