"""Accuracy benchmark: pgbot's agent against a single-prompt baseline, same model, same questions.

``python -m bench.quality --config pgbot.toml`` loads the demo shop into a throwaway database, asks every
question in ``questions.toml`` both ways, executes what each produced and compares the result sets with the
reference query's (execution accuracy). ``--smoke`` runs the same machinery offline against the scripted
OpenAI-compatible server, which answers with the reference SQL. See docs/QUALITY.md.
"""
