"""Running pgbot for a team: per-turn hooks and request ids, metrics, quotas, readiness, the metered LLM client.
May import core's flat modules (errors.py …), llm, db and threads; never approvals, tools, prompt or agent.
"""
