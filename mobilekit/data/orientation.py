"""Frame orientation: the reference that the generated Kotlin and Swift SDKs reproduce for camera frames.

A camera hands over frames as the sensor reads them. Android says how far to turn each one clockwise to make it
upright (``ImageInfo.getRotationDegrees()``: 0, 90, 180 or 270); iOS says it with an EXIF orientation
(``CGImagePropertyOrientation``, 1..8), which adds the mirrored variants a front camera produces. Both are one
transform here: turn the frame clockwise by ``degrees``, then, if ``mirrored``, flip it left to right. The model
sees the upright frame (it was trained on upright images), and the SDKs return boxes in the upright frame, the one
the user looks at; :func:`to_sensor` takes a box back to the sensor's own pixels, for overlays drawn on the raw
frame. Rotating whole pixels is exact, so the SDKs turn the pixel array before letterboxing and the canvas they feed
the model is byte for byte the one Python builds from ``upright(frame)``.
"""

from __future__ import annotations

import numpy as np

#: EXIF orientation (CGImagePropertyOrientation's raw value) → (clockwise degrees, mirrored after turning).
EXIF = {1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True),
        5: (90, True), 6: (90, False), 7: (270, True), 8: (270, False)}


def check(degrees: int) -> int:
    """``degrees`` as one of 0, 90, 180, 270 (negative and full turns are folded); anything else is refused."""
    if degrees % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    return degrees % 360


def upright(frame: np.ndarray, degrees: int, mirrored: bool = False) -> np.ndarray:
    """The frame (H×W×C) turned clockwise by ``degrees`` and flipped left to right when ``mirrored``."""
    out = np.rot90(frame, k=-(check(degrees) // 90))
    return np.ascontiguousarray(out[:, ::-1] if mirrored else out)


def upright_size(width: int, height: int, degrees: int) -> tuple[int, int]:
    """(width, height) of the upright frame."""
    return (height, width) if check(degrees) in (90, 270) else (width, height)


def to_sensor(box: np.ndarray, width: int, height: int, degrees: int, mirrored: bool = False) -> np.ndarray:
    """A box (x1, y1, x2, y2) in the upright frame → the same box in the sensor frame of ``width`` × ``height``.

    Coordinates are continuous pixel edges (0..width), so a box covering the whole upright frame covers the whole
    sensor frame; the result is again ordered x1 <= x2, y1 <= y2.
    """
    d = check(degrees)
    uw, _ = upright_size(width, height, d)
    x = np.array([box[0], box[2]], dtype=np.float64)
    y = np.array([box[1], box[3]], dtype=np.float64)
    if mirrored:
        x = uw - x
    # undo the clockwise turn: an upright point (x, y) came from this sensor point
    if d == 90:
        x, y = y, height - x
    elif d == 180:
        x, y = width - x, height - y
    elif d == 270:
        x, y = width - y, x
    return np.array([x.min(), y.min(), x.max(), y.max()])
