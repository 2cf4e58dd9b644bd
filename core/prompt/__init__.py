"""What the model sees: system prompt, accuracy techniques, schema context, catalog, ranking, hints, examples.
May import tools and everything below them, never the agent.
"""
