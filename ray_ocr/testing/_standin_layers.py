"""Paddle layers of the stand-in models (see ``ray_ocr.testing.standin_models``).

Imported only when a stand-in model is built, never by ``import ray_ocr``. The classes
must live in a real source file: ``paddle.jit.save`` converts ``forward`` with dy2static,
which reads the method's source. Rules every layer here keeps:

- every input reaches the outputs (an unused feed is rejected by ``paddle.jit.save``:
  "feed_var ... is not involved in the target_vars calculation");
- every layer owns at least one buffer, so ``inference.pdiparams`` is written (PaddleX
  finds no model in a folder without it);
- the output is a fixed function of the buffers: no randomness, no training.
"""

from __future__ import annotations

import paddle


def _named(tensor, name):
    """A fixed tensor name: paddle's default (``generated_tensor_<counter>``) depends on
    how many tensors the process made before, so two builds would differ."""
    tensor.name = name
    return tensor


class StandinLayoutDetector(paddle.nn.Layer):
    """RT-DETR shaped layout detector that reports the same boxes on every page.

    Inputs (PaddleX feeds them in sorted name order): ``im_shape [B,2]`` (resized h, w),
    ``image [B,3,H,W]``, ``scale_factor [B,2]`` (resized / original, h then w).
    Outputs: ``boxes [B*K,6]`` = (class, score, x1, y1, x2, y2) in original-page pixels
    and ``box_num [B]`` int32 (K boxes per page).
    """

    def __init__(self, table):
        super().__init__()
        # table: [K, 6] = (class, score, x1, y1, x2, y2) with page-relative coordinates.
        table = paddle.to_tensor(table, dtype="float32")
        self.register_buffer("box_table", _named(table, "standin_box_table"))

    def forward(self, im_shape, image, scale_factor):
        page_hw = im_shape / scale_factor  # [B, 2] original page (h, w)
        page_w = page_hw[:, 1:2]
        page_h = page_hw[:, 0:1]
        page_whwh = paddle.concat([page_w, page_h, page_w, page_h], axis=1)  # [B, 4]
        # The page pixels take part with weight zero: the boxes do not depend on them.
        touch = image[:, 0, 0, 0] * 0.0  # [B]
        coords = self.box_table[:, 2:6].unsqueeze(0) * page_whwh.unsqueeze(1)  # [B, K, 4]
        coords = coords + touch.reshape([-1, 1, 1])
        class_score = self.box_table[:, 0:2].unsqueeze(0) + paddle.zeros_like(coords[:, :, 0:2])
        boxes = paddle.concat([class_score, coords], axis=2).reshape([-1, 6])
        per_page = paddle.zeros_like(page_w[:, 0]) + self.box_table.shape[0]
        box_num = per_page.astype("int32")
        return boxes, box_num


class StandinClassifier(paddle.nn.Layer):
    """Image classifier (input ``x [B,3,H,W]``) that gives every input the same
    probabilities ``[B,C]``: one-hot on the chosen class."""

    def __init__(self, probs):
        super().__init__()
        probs = paddle.to_tensor(probs, dtype="float32")
        self.register_buffer("class_probs", _named(probs, "standin_class_probs"))

    def forward(self, x):
        touch = x[:, 0:1, 0, 0] * 0.0  # [B, 1]
        return self.class_probs.unsqueeze(0) + touch


class StandinUnwarper(paddle.nn.Layer):
    """UVDoc shaped unwarper (``img [B,3,H,W]`` -> same shape) that returns the page
    unchanged.

    PaddleX feeds pixels / 255 and casts ``output * 255`` to uint8 by truncation. A plain
    identity gives the pixels back exactly on CPU (measured), but any rounding below the
    integer (another device, another kernel) would turn a value v into v - 1; half a grey
    level is added so that the truncation always lands on v.
    """

    def __init__(self):
        super().__init__()
        half = paddle.to_tensor([0.5 / 255.0], dtype="float32")
        self.register_buffer("half_level", _named(half, "standin_half_level"))

    def forward(self, img):
        return img + self.half_level
