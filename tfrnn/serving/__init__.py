"""`tfrnn serve`: a local development stand-in for TF Serving's REST API over an export root."""

from tfrnn.serving.repository import ModelRepository, NotFound
from tfrnn.serving.server import make_app, serve

__all__ = ["ModelRepository", "NotFound", "make_app", "serve"]
