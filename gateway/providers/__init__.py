"""Provider dialects by flavor name."""

from gateway.providers.deepseek import DeepSeek
from gateway.providers.dialect import Dialect
from gateway.providers.gemini import Gemini
from gateway.providers.groq import Groq
from gateway.providers.ollama import Ollama
from gateway.providers.openai import OpenAI

DIALECTS: dict[str, Dialect] = {d.flavor: d for d in (OpenAI(), Groq(), Gemini(), DeepSeek(), Ollama())}

__all__ = ["DIALECTS", "Dialect"]
