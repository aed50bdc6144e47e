"""Using trained models: loading runs, sampling, grids and image/array I/O."""
from .api import generate, load_run
from .images import make_grid, save_grid, save_images, save_npz, to_uint8_nhwc

__all__ = ["load_run", "generate", "make_grid", "save_grid", "save_images", "save_npz", "to_uint8_nhwc"]
