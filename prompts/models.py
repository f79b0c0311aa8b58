"""Prompt templates and their versions (tenant schema). Filled by the prompts issue."""
