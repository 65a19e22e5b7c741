"""Training-time augmentation, on whole batches: small affine changes and line thickness.

Canvas drawings differ from MNIST's scanned pen strokes mostly in slant, proportions and line
width; these per-sample random changes teach the model to ignore exactly that.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from guessme_train.params import AugmentParams


def augment_batch(images: torch.Tensor, params: AugmentParams, generator: torch.Generator) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] -> the same shape, each image randomly thickened/thinned and warped."""
    if not params.enabled:
        return images
    images = _line_thickness(images, params.thickness_prob, generator)
    return _random_affine(images, params, generator)


# The random draws come from a CPU generator whatever the images' device, so a seed gives the same
# augmentation on a CPU and on a GPU; only the (small) per-image parameters cross to the device.


def _uniform(n: int, bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * bound


def _line_thickness(images: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """With probability `prob`, blend each image towards its dilation (thicker) or erosion (thinner)."""
    n = images.shape[0]
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    choice = torch.rand(n, generator=generator).to(images.device)
    strength = torch.rand(n, generator=generator).view(n, 1, 1, 1).to(images.device)
    thicker = (choice < prob / 2).view(n, 1, 1, 1)
    thinner = ((choice >= prob / 2) & (choice < prob)).view(n, 1, 1, 1)
    out = torch.where(thicker, images + strength * (dilated - images), images)
    # Erosion can break a thin stroke: blend at most halfway.
    return torch.where(thinner, images + 0.5 * strength * (eroded - images), out)


def _random_affine(images: torch.Tensor, params: AugmentParams, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = images.shape
    angle = _uniform(n, math.radians(params.rotate_deg), generator)
    shear = _uniform(n, math.radians(params.shear_deg), generator)
    scale = 1 + _uniform(n, params.scale, generator)
    # affine_grid works in [-1, 1] coordinates: a pixel is 2 / size.
    tx = _uniform(n, params.translate_px * 2 / w, generator)
    ty = _uniform(n, params.translate_px * 2 / h, generator)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # The grid maps output to input coordinates: the inverse of scale * rotate * shear.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos / scale
    theta[:, 0, 1] = (-sin + cos * tan) / scale
    theta[:, 1, 0] = sin / scale
    theta[:, 1, 1] = (cos + sin * tan) / scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
