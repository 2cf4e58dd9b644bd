"""Each conversation in order: thread context, per-thread lines, cross-replica lease, limits, in-flight work, dedupe.
May import core's flat modules (errors.py …) and llm (chat turns); nothing that answers or runs anything.
"""
