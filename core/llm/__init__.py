"""The model behind the ``LlmClient`` protocol: the OpenAI-compatible client, text tool calls, a scripted test LLM.
May import errors, messages and config only.
"""
