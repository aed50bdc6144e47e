"""Model families. Importing this package registers every model file with the registry."""
from . import aae, adain, cgan, dcgan, pixelcnn, pixelrnn, vae  # noqa: F401
from .base import GenerativeModel, Phase, count_parameters

__all__ = ["GenerativeModel", "Phase", "count_parameters"]
