"""OpenAI-compatible HTTP server: ``create_app(served_model(unmask.load(DIR), name))``.

``unmask serve`` runs it with uvicorn. Layers inside: ``protocol`` (wire models) -> ``prepare``
(validation, request -> engine request) -> ``scheduler`` (engine thread, batching,
cancellation) -> ``respond`` (JSON or SSE) -> ``app`` (routes, auth, limits, errors).
"""

from unmask.server.app import create_app, served_model
from unmask.server.prepare import Limits, ServedModel

__all__ = ["Limits", "ServedModel", "create_app", "served_model"]
