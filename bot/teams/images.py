"""Charts on a Teams card: a PNG as an Image element (a data URI unless told a URL), shrunk to
fit the card's size limit; a chart that cannot fit is left out and the caller says why."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from bot.teams.layout import DATA_URI_PREFIX, IMAGE_URL_MAX, Element


def chart_image(path: Path, image_url: Callable[[Path], str] | None = None
                ) -> tuple[Element | None, str]:
    """An Image element showing the chart PNG (a data URI by default), or None and why not."""
    url, problem = _image_url(path, image_url)
    if url is None:
        return None, problem
    return {"type": "Image", "url": url, "altText": f"Chart: {path.stem}", "size": "Stretch",
            "msTeams": {"allowExpand": True}}, ""


def _image_url(path: Path, image_url: Callable[[Path], str] | None
               ) -> tuple[str | None, str]:
    """The chart's URL, or None and why not."""
    try:
        if image_url is None:
            raw = path.read_bytes()
            png = fit_png(raw, 3 * (IMAGE_URL_MAX - len(DATA_URI_PREFIX)) // 4)
            if png is None:
                return None, f"{len(raw) / 1024:.0f} KB is too large for a Teams card"
            url = DATA_URI_PREFIX + base64.b64encode(png).decode("ascii")
        else:
            url = image_url(path)
    except OSError as exc:
        return None, f"it could not be read ({exc.strerror or exc})"
    if len(url.encode()) > IMAGE_URL_MAX:
        return None, "its URL is too large for a Teams card"
    return url, ""


def fit_png(data: bytes, limit: int) -> bytes | None:
    """The PNG within `limit` bytes: as it is, else re-encoded with a small palette (a chart
    has few colours, so this costs nothing visible) and, if still too big, scaled down; None
    if even that does not fit or it is not an image."""
    if len(data) <= limit:
        return data
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except (OSError, ValueError):
        return None
    # Charts are line plots on white: few colours and a Teams-card width (about 500 px)
    # keep them readable; the last steps trade colour for size.
    for scale, colors in ((1.0, 64), (1.0, 24), (0.8, 24), (0.65, 16), (0.5, 16),
                          (0.45, 12), (0.45, 8), (0.4, 8), (0.35, 8)):
        shown = image if scale == 1.0 else image.resize(
            (int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        shown.quantize(colors=colors).save(out, format="PNG", optimize=True)
        if out.tell() <= limit:
            return out.getvalue()
    return None


