"""OpenAI: the reference dialect; every fact lives in the shared base."""

from gateway.providers.dialect import Dialect


class OpenAI(Dialect):
    flavor = "openai"
