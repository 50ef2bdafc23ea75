"""Detection kernels: RoiAlign and NonMaxSuppression."""

from __future__ import annotations

import math

import numpy as np

from ferry.runtime.registry import kernel


def _bilinear_taps(coords: np.ndarray, size: int):
    """Low/high neighbour indices and weights along one axis (zero weight when out of range).

    Samples farther than one pixel outside the input are dropped; the rest are clamped
    to the border, as RoiAlign's bilinear sampling does.
    """
    valid = (coords >= -1.0) & (coords <= size)
    c = np.maximum(coords, 0.0)
    low = np.floor(c).astype(np.int64)
    at_end = low >= size - 1
    low = np.where(at_end, size - 1, low)
    high = np.where(at_end, size - 1, low + 1)
    c = np.where(at_end, low, c)
    frac = c - low
    return low, high, (1.0 - frac) * valid, frac * valid


def _sample_points(start, length, bins, grid):
    """Sample coordinates (bins, grid) evenly spaced inside each bin of a RoI side."""
    step = length / bins
    return start + np.arange(bins)[:, None] * step + (np.arange(grid)[None, :] + 0.5) * step / grid


def _roi_align_one(fmap, box, out_h, out_w, sampling_ratio, half_pixel, mode):
    """Pool one RoI from fmap (C, H, W) into (C, out_h, out_w)."""
    height, width = fmap.shape[1:]
    x1, y1, x2, y2 = box  # scalars of the feature map's float type
    roi_w, roi_h = x2 - x1, y2 - y1
    if not half_pixel:
        roi_w, roi_h = np.maximum(roi_w, 1), np.maximum(roi_h, 1)
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / roi_h.dtype.type(out_h))
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / roi_w.dtype.type(out_w))
    yl, yh, wyl, wyh = _bilinear_taps(_sample_points(y1, roi_h, out_h, grid_h), height)
    xl, xh, wxl, wxh = _bilinear_taps(_sample_points(x1, roi_w, out_w, grid_w), width)
    # each term is (C, out_h, grid_h, out_w, grid_w)
    terms = []
    for rows, wy in ((yl, wyl), (yh, wyh)):
        for cols, wx in ((xl, wxl), (xh, wxh)):
            values = fmap[:, rows[:, :, None, None], cols[None, None, :, :]]
            terms.append(values * (wy[:, :, None, None] * wx[None, None, :, :]))
    if mode == "avg":
        return sum(terms).mean(axis=(2, 4))
    return np.maximum.reduce(terms).max(axis=(2, 4))


@kernel("RoiAlign", since=(10, 16, 22))
def roi_align(x, rois, batch_indices, *, mode, output_height, output_width, sampling_ratio,
              spatial_scale, coordinate_transformation_mode=None):
    """Average (or max) of bilinear samples over a grid in each bin of each RoI."""
    if mode not in ("avg", "max"):
        raise ValueError(f"RoiAlign mode must be 'avg' or 'max', got {mode!r}")
    transform = coordinate_transformation_mode or "output_half_pixel"
    if transform not in ("half_pixel", "output_half_pixel"):
        raise ValueError(f"unknown coordinate_transformation_mode {transform!r}")
    half_pixel = transform == "half_pixel"
    fmap_dtype = np.float64 if x.dtype == np.float64 else np.float32
    # box arithmetic in the input's precision, so adaptive grid sizes agree with other runtimes
    boxes = rois.astype(fmap_dtype) * fmap_dtype(spatial_scale) - fmap_dtype(0.5 * half_pixel)
    y = np.zeros((rois.shape[0], x.shape[1], output_height, output_width), dtype=x.dtype)
    for r, (box, b) in enumerate(zip(boxes, batch_indices.astype(np.int64).tolist(), strict=True)):
        fmap = x[b].astype(fmap_dtype)
        y[r] = _roi_align_one(fmap, box, output_height, output_width, sampling_ratio,
                              half_pixel, mode)
    return y


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """Boxes as (y_min, x_min, y_max, x_max)."""
    if center_point_box:
        xc, yc, w, h = np.moveaxis(boxes, -1, 0)
        return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    y1, x1, y2, x2 = np.moveaxis(boxes, -1, 0)
    return np.stack([np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2),
                     np.maximum(x1, x2)], axis=-1)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    top = np.maximum(box[0], others[:, 0])
    left = np.maximum(box[1], others[:, 1])
    bottom = np.minimum(box[2], others[:, 2])
    right = np.minimum(box[3], others[:, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _scalar(value, default, cast):
    """A scalar input that may come as shape () or (1,), or be omitted."""
    if value is None or np.asarray(value).size == 0:
        return default
    return cast(np.asarray(value).reshape(-1)[0])


def _select(boxes, scores, limit, iou_threshold, score_threshold) -> list[int]:
    """Greedy NMS for one (batch, class): indices in order of selection."""
    order = np.argsort(-scores, kind="stable")
    if score_threshold is not None:
        order = order[scores[order] > score_threshold]
    chosen: list[int] = []
    for i in order.tolist():
        if len(chosen) >= limit:
            break
        if not chosen or np.all(_iou(boxes[i], boxes[chosen]) <= iou_threshold):
            chosen.append(i)
    return chosen


@kernel("NonMaxSuppression", since=(10, 11))
def non_max_suppression(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
                        score_threshold=None, *, center_point_box):
    """Greedy per-class NMS; returns [batch, class, box] rows in selection order."""
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.ndim != 3:
        raise ValueError(f"expected boxes (B, N, 4) and scores (B, C, N), got {boxes.shape} and "
                         f"{scores.shape}")
    limit = _scalar(max_output_boxes_per_class, 0, int)
    iou = _scalar(iou_threshold, 0.0, float)
    threshold = _scalar(score_threshold, None, float)
    corners = _corners(boxes.astype(np.float64), center_point_box)
    rows = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            picked = _select(corners[b], scores[b, c], limit, iou, threshold)
            rows.extend((b, c, i) for i in picked)
    return np.array(rows, dtype=np.int64).reshape(-1, 3)
