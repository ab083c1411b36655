"""Loopback fake servers speaking real LLM wire formats (OpenAI Chat Completions, Gemini)."""
