"""OpenAI: the reference flavor; every fact lives in the shared base."""

from gateway.providers.base import Flavor


class OpenAI(Flavor):
    name = "openai"


FLAVOR = OpenAI()
