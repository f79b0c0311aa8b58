"""OpenAI-compatible LLM provider simulator whose behaviour tests control over HTTP (see README.md there)."""
