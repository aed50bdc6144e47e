"""Model families. Importing this package registers every model file with the registry."""
from . import aae, adain, cgan, dcgan, pixelcnn, pixelrnn, vae  # noqa: F401
from . import cyclegan, pix2pix  # noqa: F401  (image-to-image translation)
from . import dncnn, inpaint, srnet  # noqa: F401  (restoration: denoising, inpainting, super-resolution)
from . import progan, stylegan, stylegan2  # noqa: F401  (progressive growing, style-based generators)
from .base import GenerativeModel, Phase, count_parameters

__all__ = ["GenerativeModel", "Phase", "count_parameters"]
