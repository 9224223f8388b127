"""Pictures for people: contact sheets of bursts (and, later, report figures)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def label_tile(img: np.ndarray, text: str, bar: int = 16) -> np.ndarray:
    """``(H, W, C)`` float image in [0, 1] -> uint8 RGB with a caption bar above it."""
    arr = np.clip(img, 0, 1)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    tile = Image.new("RGB", (arr.shape[1], arr.shape[0] + bar), (32, 32, 32))
    tile.paste(Image.fromarray(np.round(arr * 255).astype(np.uint8)), (0, bar))
    ImageDraw.Draw(tile).text((3, 2), text, fill=(235, 235, 235))
    return np.asarray(tile)


def contact_sheet(tiles: list[np.ndarray], columns: int = 4, gap: int = 4) -> np.ndarray:
    """Arrange equally sized uint8 RGB tiles on a grid; returns uint8 ``(H, W, 3)``."""
    if not tiles:
        raise ValueError("no tiles")
    th, tw = tiles[0].shape[:2]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = np.full(
        (rows * th + (rows + 1) * gap, columns * tw + (columns + 1) * gap, 3), 16, np.uint8
    )
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y : y + th, x : x + tw] = t
    return sheet
