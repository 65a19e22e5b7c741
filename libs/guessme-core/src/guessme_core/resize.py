"""Antialiased bilinear resize in NumPy: PyTorch's CPU `_upsample_bilinear2d_aa`, without torch.

`torch.nn.functional.interpolate(x, size, mode="bilinear", antialias=True, align_corners=False)` on a
float32 image, reproduced step for step from PyTorch's source so that the serving replica can drop torch:
aten/src/ATen/native/cpu/UpSampleKernel.cpp (`HelperInterpBase::_compute_indices_min_size_weights_aa`,
`HelperInterpLinear::aa_filter`, `interpolate_aa_single_dim[_zero_strides]`, `basic_loop_aa_horizontal`
/ `_vertical`, `separable_upsample_generic_Nd_kernel_impl`) and aten/src/ATen/native/UpSample.h
(`area_pixel_compute_scale`, `compute_scales_value`). Every step keeps the kernel's types (float32 where
it has `scalar_t`, float64 where C++ promotes to double) and its order: the width pass first, then the
height pass, each output a left-to-right float32 sum. The result is bit-identical to torch's portable
kernel (ATEN_CPU_CAPABILITY=default); torch's AVX2/AVX512 builds fuse some of those multiply-adds
(FMA), which moves some pixels by an ulp or two (tests/core/test_resize.py measures both).
"""

from functools import cache

import numpy as np

_F32 = np.float32


def resize_bilinear_antialias(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A finite 2-D float32 image -> (height, width) float32, as torch's antialiased bilinear resize."""
    out = np.asarray(image, dtype=_F32)
    if out.ndim != 2 or height < 1 or width < 1 or 0 in out.shape:
        raise ValueError(f"need a non-empty 2-D image and a positive size: {out.shape} -> {height}x{width}")
    # separable_upsample_generic_Nd_kernel_impl: a pass only along an axis whose size changes, the
    # contiguous (width) axis first.
    if out.shape[1] != width:
        out = _resample_rows(out, *_weights(out.shape[1], width))
    if out.shape[0] != height:
        first, weights = _weights(out.shape[0], height)
        if out.shape[1] == 1:
            # With one column, TensorIterator drops the size-1 width axis and basic_loop_aa_vertical,
            # which reads the weights of its first output row only (`data[..][0]`), gives every row
            # that row's value. Kept, so the images stay the ones torch made.
            first, weights = np.repeat(first[:1], height), np.repeat(weights[:1], height, axis=0)
        out = _resample_rows(np.ascontiguousarray(out.T), first, weights).T
    return np.ascontiguousarray(out)


def _resample_rows(src: np.ndarray, first: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every row of `src` resampled: output o = sum_j src[first[o] + j] * weights[o, j].

    Accumulated in float32 from j = 0 up, as interpolate_aa_single_dim does. An output whose support
    is shorter than the longest gets weight 0 on the extra terms (index clamped into the row), and
    adding an exact 0.0 leaves a float sum unchanged.
    """
    index = np.minimum(first[:, None] + np.arange(weights.shape[1]), src.shape[1] - 1)
    acc = src[:, index[:, 0]] * weights[:, 0]
    for j in range(1, weights.shape[1]):
        acc += src[:, index[:, j]] * weights[:, j]
    return acc


@cache
def _weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: its first input index and its normalised triangle-filter weights,
    (out_size,) int64 and (out_size, longest support) float32, read-only (cached per size pair).

    HelperInterpBase::_compute_indices_min_size_weights_aa with scalar_t = float and interp_size = 2;
    each `_F32(...)` is a place where the C++ stores a double into a float.
    """
    # area_pixel_compute_scale (align_corners=False, no scale factor): float(in) / out in float32.
    scale = _F32(in_size) / _F32(out_size)
    # _compute_index_ranges_weights: support = (interp_size * 0.5) * scale when downscaling, else 1.
    support = _F32(float(scale)) if scale >= 1.0 else _F32(1.0)
    max_size = int(np.ceil(support)) * 2 + 1
    invscale = _F32(1.0 / float(scale)) if scale >= 1.0 else _F32(1.0)
    firsts = np.zeros(out_size, dtype=np.int64)
    table = np.zeros((out_size, max_size), dtype=_F32)
    longest = 1
    for i in range(out_size):
        center = _F32(float(scale) * (i + 0.5))
        # static_cast<int64_t> truncates towards zero; (float - float) + 0.5 is done in double.
        xmin = max(int(float(center - support) + 0.5), 0)
        xsize = min(int(float(center + support) + 0.5), in_size) - xmin
        xsize = min(max(xsize, 0), max_size)
        total = _F32(0.0)
        for j in range(xsize):
            # filter_fn((j + xmin - center + 0.5) * invscale): int64 - float in float32, the rest in
            # double, passed as aa_filter's float; its 1.0 - |x| is double, returned as float.
            x = abs(_F32((float(_F32(j + xmin) - center) + 0.5) * float(invscale)))
            w = _F32(1.0 - float(x)) if x < 1.0 else _F32(0.0)
            table[i, j] = w
            total = _F32(total + w)
        if total != 0.0:
            table[i, :xsize] /= total
        firsts[i] = xmin
        longest = max(longest, xsize)
    table = table[:, :longest].copy()  # the columns past every support are zeros: time only
    firsts.flags.writeable = False
    table.flags.writeable = False
    return firsts, table
