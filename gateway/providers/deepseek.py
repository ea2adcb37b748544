"""DeepSeek: 402 for an empty balance (base rule), and an unknown model as a 400."""

from __future__ import annotations

from gateway.errors import UpstreamError
from gateway.providers.dialect import Dialect


class DeepSeek(Dialect):
    flavor = "deepseek"
    supports_embeddings = False  # DeepSeek has no embeddings API

    def is_model_not_found(self, err: UpstreamError) -> bool:
        # "Model Not Exist" comes as a 400 (most reports) or a 404: a gateway model-map error either way.
        return super().is_model_not_found(err) or err.message == "Model Not Exist"
