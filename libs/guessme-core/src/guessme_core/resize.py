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
_F64 = np.float64


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
        index, weights = _weights(out.shape[0], height)
        if out.shape[1] == 1:
            # With one column, TensorIterator drops the size-1 width axis and basic_loop_aa_vertical,
            # which reads the weights of its first output row only (`data[..][0]`), gives every row
            # that row's value. Kept, so the images stay the ones torch made.
            index, weights = index[:1], weights[:1]
            out = np.repeat(_resample_rows(out.T, index, weights).T, height, axis=0)
        else:
            out = _resample_rows(out.T, index, weights).T
    return np.ascontiguousarray(out)


def _resample_rows(src: np.ndarray, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every row of `src` resampled: output o = sum_j src[index[o, j]] * weights[o, j].

    The float32 products, then their float32 sum from j = 0 up, as interpolate_aa_single_dim does. An
    output whose support is shorter than the longest has weight 0 on the extra terms (index clamped
    into the row), and adding an exact 0.0 leaves a float sum unchanged.
    """
    terms = src[:, index] * weights  # (rows, outputs, longest support)
    acc = terms[:, :, 0].copy()
    for j in range(1, weights.shape[1]):
        acc += terms[:, :, j]
    return acc


@cache
def _weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: the input indices of its support and its normalised triangle-filter weights,
    both (out_size, longest support), int64 and float32, read-only (cached per size pair).

    HelperInterpBase::_compute_indices_min_size_weights_aa with scalar_t = float and interp_size = 2,
    for all outputs at once (NumPy's elementwise float32/float64 operations round as C++ does).
    `.astype(_F32)` marks each place where the C++ stores a double into a float, `_F64` each place
    where it promotes a float to double.
    """
    # area_pixel_compute_scale (align_corners=False, no scale factor): float(in) / out in float32, also
    # for a 1-px output (older UpSample.h returned 0 there; the torch this replaced divides).
    scale = _F32(in_size) / _F32(out_size)
    # _compute_index_ranges_weights: support = (interp_size * 0.5) * scale when downscaling, else 1.
    support = scale if scale >= 1.0 else _F32(1.0)
    max_size = int(np.ceil(support)) * 2 + 1
    invscale = _F64(_F32(1.0 / _F64(scale)) if scale >= 1.0 else 1.0)
    center = (_F64(scale) * (np.arange(out_size) + 0.5)).astype(_F32)
    # xmin, xsize: (float - float) + 0.5 in double, then static_cast<int64_t>, which truncates.
    xmin = np.maximum(np.trunc((center - support).astype(_F64) + 0.5).astype(np.int64), 0)
    xend = np.minimum(np.trunc((center + support).astype(_F64) + 0.5).astype(np.int64), in_size)
    xsize = np.clip(xend - xmin, 0, max_size)
    j = np.arange(max_size)
    # aa_filter((j + xmin - center + 0.5) * invscale): int64 - float in float32, + 0.5 and * invscale
    # in double, passed as a float; its 1.0 - |x| is double, returned as a float. 0 past the support.
    offset = ((xmin[:, None] + j).astype(_F32) - center[:, None]).astype(_F64)
    x = np.abs((offset + 0.5) * invscale).astype(_F32)
    w = np.where((x < 1.0) & (j < xsize[:, None]), (1.0 - x.astype(_F64)).astype(_F32), _F32(0.0))
    total = np.zeros(out_size, dtype=_F32)
    for k in range(max_size):  # total_w += w, in float32 and in order
        total += w[:, k]
    w = np.where(total[:, None] != 0.0, w / np.where(total == 0.0, _F32(1.0), total)[:, None], w)
    longest = max(int(xsize.max()), 1)  # the columns past every support are zeros: time only
    index = np.minimum(xmin[:, None] + np.arange(longest), in_size - 1)
    weights = np.ascontiguousarray(w[:, :longest])
    index.flags.writeable = False
    weights.flags.writeable = False
    return index, weights
