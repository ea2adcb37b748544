"""OpenAI: the reference flavor; every fact lives in the shared base."""

from gateway.providers.base import Capability, Flavor


class OpenAI(Flavor):
    name = "openai"
    # Legacy /completions too (gpt-3.5-turbo-instruct, davinci-002; chat models answer it 400), and
    # speech: OpenAI's own, and any OpenAI-compatible local TTS server (Kokoro-FastAPI, Speaches).
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS, Capability.COMPLETIONS, Capability.SPEECH})


FLAVOR = OpenAI()
