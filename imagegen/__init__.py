"""imagegen: classic generative image models with one training loop, trusted metrics and a CLI.

Images are float32 NCHW in [-1, 1] everywhere inside the library; uint8 only at the edges.

Python API::

    import imagegen
    model = imagegen.load_run("runs/mnist-dcgan")          # GenerativeModel in eval mode
    img = imagegen.generate(model, 16, seed=0)               # float32 [16, C, H, W] in [-1, 1]
"""
__version__ = "0.1.0"

from .sampling import generate, load_run  # noqa: E402

__all__ = ["__version__", "load_run", "generate"]
