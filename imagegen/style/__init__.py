"""Neural style transfer: optimisation-based (Gatys et al. 2016) in :mod:`imagegen.style.gatys`; feed-forward
AdaIN (Huang & Belongie 2017) in :mod:`imagegen.style.adain` (the network is :mod:`imagegen.models.adain`)."""
from .adain import masked_adain, stylize_adain
from .gatys import (GatysProgress, gram_matrix, match_color_histogram, match_luminance, rgb_to_yiq, stylize_gatys,
                    yiq_to_rgb)

__all__ = ["stylize_gatys", "stylize_adain", "masked_adain", "GatysProgress", "gram_matrix", "match_color_histogram",
           "match_luminance", "rgb_to_yiq", "yiq_to_rgb"]
