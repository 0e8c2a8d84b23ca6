"""Preprocessing for the disputes team's receipt model: any photo in, one fixed size out.

Cardholders who dispute a payment upload a photo of the receipt. The model that reads
those photos takes square ``size x size`` RGB images, but receipts are tall and thin,
screenshots are wide, and phones write every size. ``letterbox`` scales an image so
that its longer side fits the square exactly, keeps its aspect ratio (stretching a
receipt distorts the digits; cropping it cuts off the total), and pads the rest.
``to_model_input`` turns a list of photos into the tensor the model takes.
"""

from __future__ import annotations

import numpy as np
import torch


def letterbox(image: np.ndarray, size: int, fill: int = 0) -> np.ndarray:
    """Fit an ``(height, width, 3)`` uint8 image into a ``(size, size, 3)`` uint8 square.

    - The longer side is scaled to exactly ``size`` pixels, up or down; the shorter
      side keeps the aspect ratio, rounded to the nearest pixel but never below one.
    - Resampling is nearest-neighbour, so every output pixel is a copy of an input
      pixel: no new colours appear and values stay in 0..255.
    - The image is centred; the padding, of value ``fill``, is split evenly between
      the two sides, with the odd pixel (if any) at the bottom or right.
    - The input array is not modified.
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_height = max(1, round(height * scale))
    new_width = max(1, round(width * scale))
    # Sample each output pixel at the centre of the input area it covers.
    rows = ((np.arange(new_height) + 0.5) * height / new_height).astype(int)
    cols = ((np.arange(new_width) + 0.5) * width / new_width).astype(int)
    resized = image[rows[:, None], cols[None, :]]

    canvas = np.full((size, size, 3), fill, dtype=np.uint8)
    top = (size - new_height) // 2
    left = (size - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = resized
    return canvas


def to_model_input(photos: list[np.ndarray], size: int) -> torch.Tensor:
    """The receipt model's input: a batch made from a list of photos.

    - Each photo, an ``(height, width, 3)`` uint8 array, is letterboxed to
      ``size x size`` with black padding (``fill=0``).
    - The batch has shape ``(N, 3, size, size)``: one image per photo, in the order
      given, channels first, as PyTorch's convolutions expect.
    - Its dtype is float32, and pixel values are divided by 255 so that they lie in
      ``[0, 1]``: black is 0.0 and full intensity is 1.0.
    - The photos are not modified. ``photos`` holds at least one photo.
    """
    squares = np.stack([letterbox(photo, size) for photo in photos])
    batch = torch.from_numpy(squares).permute(0, 3, 1, 2)
    return batch.to(torch.float32) / 255
