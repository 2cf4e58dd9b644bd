"""Changes that wait for a person: the pending action, the rules that decide it, executors, store and audit.
May import core's flat modules (errors.py …), llm, db and threads; never tools, prompt or agent.
"""
