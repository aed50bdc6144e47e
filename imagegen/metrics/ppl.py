"""Perceptual path length (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks", §4.2, Eq. 2–3): how much the image changes, perceptually, along a
short step of a latent-space interpolation — lower means a smoother, less entangled latent space.

    PPL_W = E[ d(g(lerp(w1, w2; t)), g(lerp(w1, w2; t + ε))) / ε² ],   w = f(z), z1, z2 ~ N(0, I)

with ε = 1e-4; ``sampling="end"`` draws t ∈ {0, 1} (the paper's Table 4 "end" variant; StyleGAN2 uses
it), ``"full"`` t ~ U(0, 1). As in the official implementation (NVlabs/stylegan2-ada-pytorch,
``metrics/perceptual_path_length.py``) the per-sample distances outside the 1st–99th percentile are
discarded before averaging.

**The distance is not the published one.** The paper's d is LPIPS with VGG16 weights (Zhang et al.
2018), which cannot be downloaded here. d is the squared L2 distance between the features of the
evaluation's feature extractor (``imagegen evaluate --extractor``: Inception pool features where its
weights are available, else the dataset classifier's penultimate activations), recorded in the
protocol: values are comparable between models evaluated with the same extractor weights, never with
published PPL numbers. Both images of a pair are compared in float32, not quantised: the step ε changes
them by far less than one grey level.

``space="z"`` interpolates z by slerp (the paper's PPL_Z) and applies to any model with
``generate(z)``; ``space="w"`` needs a mapping network (``has_style_latents``).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch

from ..errors import ConfigError
from ..sampling.interpolate import slerp_pairs

EPSILON = 1e-4


@torch.no_grad()
def perceptual_path_length(model: Any, extractor: Callable[[torch.Tensor], tuple[torch.Tensor, Any]], *,
                           num_samples: int = 10000, space: str = "w", sampling: str = "end",
                           epsilon: float = EPSILON, seed: int = 0, batch_size: int = 100) -> dict[str, Any]:
    """PPL of a generator (Karras et al. 2019, Eq. 2–3), with the feature distance described above.

    Args:
        model: a trained model; ``space="w"`` needs ``has_style_latents`` (mapping/synthesize),
            ``space="z"`` a ``generate(z, labels)`` method.
        extractor: images float32 [N, C, H, W] in [-1, 1] → (features [N, D], logits or None).
        num_samples: interpolation pairs (the paper: 100,000).
        space: ``w`` (lerp in W) or ``z`` (slerp in Z).
        sampling: ``end`` (t ∈ {0, 1}) or ``full`` (t ~ U(0, 1)).
        epsilon: the step ε.
        seed: seed of z1, z2, t, labels and the noise inputs.
        batch_size: pairs per forward pass.

    Returns:
        ``{"ppl": mean distance / ε² over the 1st–99th percentile, "ppl_median": ..., "num_samples": N}``.

    Raises:
        ConfigError: a bad ``space``/``sampling``, or a model that cannot interpolate in that space.
    """
    if space not in ("w", "z") or sampling not in ("end", "full"):
        raise ConfigError(f"PPL space {space!r} / sampling {sampling!r}: use space w or z and sampling end or full")
    style = bool(getattr(model, "has_style_latents", False))
    if space == "w" and not style:
        raise ConfigError(f"{model.model_name} has no mapping network: PPL in w needs a style-based model "
                          "(stylegan2, stylegan); use --ppl-space z")
    if space == "z" and not hasattr(model, "generate"):
        raise ConfigError(f"{model.model_name} does not generate from a latent z; PPL needs a GAN-like generator")
    if num_samples < 1:
        raise ConfigError(f"PPL needs at least one sample, not {num_samples}")
    gen = torch.Generator(device=model.device).manual_seed(seed)
    k = model.num_classes
    dists = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = model.sample_latents(2 * n, gen)
        z1, z2 = z[:n], z[n:]
        t = torch.rand(n, generator=gen, device=gen.device).to(model.device)
        if sampling == "end":
            t = (t > 0.5).float()
        labels = torch.randint(0, k, (n,), generator=gen, device=gen.device).to(model.device) if k else None
        if space == "w":
            w1, w2 = model.mapping(z1, labels)[:, 0], model.mapping(z2, labels)[:, 0]
            wa, wb = torch.lerp(w1, w2, t[:, None]), torch.lerp(w1, w2, (t + epsilon)[:, None])
            noise_seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=gen, device=gen.device).item())
            # the same noise for both images of a pair, so only the step in w moves the image
            img_a = model.synthesize(wa, noise_mode="random",
                                     generator=torch.Generator(device=model.device).manual_seed(noise_seed))
            img_b = model.synthesize(wb, noise_mode="random",
                                     generator=torch.Generator(device=model.device).manual_seed(noise_seed))
        else:
            za, zb = slerp_pairs(z1, z2, t), slerp_pairs(z1, z2, t + epsilon)
            img_a, img_b = _generate_same_noise(model, za, labels), _generate_same_noise(model, zb, labels)
        fa, _ = extractor(img_a.float())
        fb, _ = extractor(img_b.float())
        dists.append(((fa.float() - fb.float()).square().sum(1) / epsilon ** 2).double().cpu())
    d = torch.cat(dists).numpy()
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = d[(d >= lo) & (d <= hi)]
    return {"ppl": float(kept.mean()), "ppl_median": float(np.median(d)), "num_samples": int(len(d))}


def _generate_same_noise(model: Any, z: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
    """``model.generate(z, labels)`` with noise inputs fixed (style models: ``const``) so that the pair
    differs by the latent step only."""
    if getattr(model, "has_style_latents", False):
        return model.generate(z, labels, noise_mode="const")
    return model.generate(z, labels)


def ppl_protocol(extractor: Any, space: str, sampling: str, num_samples: int, seed: int,
                 epsilon: float = EPSILON) -> dict[str, Any]:
    """What a PPL value means, recorded with it."""
    ext = extractor.protocol() if hasattr(extractor, "protocol") else {"name": str(extractor)}
    return {"metric": "ppl", "paper": "Karras et al. 2019, §4.2, Eq. 2-3", "space": space, "sampling": sampling,
            "epsilon": epsilon, "num_samples": num_samples, "seed": seed,
            "distance": (f"squared L2 between {ext.get('name')} features / epsilon^2 (the published metric uses "
                         "LPIPS with VGG16 weights, not available offline: not comparable with published PPL)"),
            "extractor": ext, "outliers": "distances outside the 1st-99th percentile discarded (as NVlabs)",
            "units": "squared feature distance / epsilon^2"}


