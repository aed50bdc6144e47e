"""Neural style transfer: optimisation-based (Gatys et al. 2016) in :mod:`imagegen.style.gatys`."""
from .gatys import (GatysProgress, gram_matrix, match_color_histogram, match_luminance, rgb_to_yiq, stylize_gatys,
                    yiq_to_rgb)

__all__ = ["stylize_gatys", "GatysProgress", "gram_matrix", "match_color_histogram", "match_luminance",
           "rgb_to_yiq", "yiq_to_rgb"]
