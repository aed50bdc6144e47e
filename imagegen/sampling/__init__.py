"""Using trained models: loading runs, sampling, grids and image/array I/O."""
from .api import SAMPLE_BATCH, generate, load_run
from .images import make_grid, save_grid, save_images, save_npz, to_uint8_nhwc

__all__ = ["load_run", "generate", "SAMPLE_BATCH", "make_grid", "save_grid", "save_images", "save_npz", "to_uint8_nhwc"]
