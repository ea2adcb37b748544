"""OpenAI-compatible LLM fallback gateway."""
