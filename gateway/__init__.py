"""The only door to model providers. Nothing outside gateway/ imports litellm."""
