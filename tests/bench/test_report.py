"""The HTML benchmark report: self-contained, complete, and renderable by a browser."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from burstkpn.bench.figures import zoom_window
from burstkpn.bench.report import render_screenshot, write_html_report

LEVELS = ["gain1", "gain2", "gain3", "gain4"]
METHODS = ["KPN", "MKPN & co <fast>", "AME-KPN"]
# every PSNR / SSIM distinct, so the bold markup identifies one cell; best per level:
# gain1 -> AME-KPN, gain2 -> MKPN, gain3 -> AME-KPN, gain4 -> KPN (gain4 AME-KPN is missing)
PSNR = {
    "KPN": [36.11, 33.21, 31.31, 29.95],
    "MKPN & co <fast>": [36.52, 34.02, 31.42, 29.41],
    "AME-KPN": [37.03, 33.93, 32.04, None],
}
SSIM = {
    "KPN": [0.9511, 0.9211, 0.8811, 0.8411],
    "MKPN & co <fast>": [0.9522, 0.9322, 0.8822, 0.8422],
    "AME-KPN": [0.9633, 0.9233, 0.8933, None],
}


def _table() -> dict:
    rows = []
    for m in METHODS:
        rows.append(
            {
                "method": m,
                "psnr": dict(zip(LEVELS, PSNR[m], strict=True)),
                "ssim": dict(zip(LEVELS, SSIM[m], strict=True)),
                "sec_per_mp": None if m == "KPN" else 0.123,
                "note": "trained 2h" if m == "AME-KPN" else "",
            }
        )
    return {"levels": LEVELS, "rows": rows, "caption": "burstkpn bench --test-set <synthetic>"}


def _smooth(c: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, c, h // 8 + 1, w // 8 + 1, generator=g)
    up = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return up[0].clamp(0, 1) ** 2.2  # linear light


def _examples() -> list[dict]:
    out = []
    for i, c in enumerate((3, 1)):
        clean = _smooth(c, 64, 80, seed=i)
        g = torch.Generator().manual_seed(10 + i)
        noisy = clean + 0.08 * torch.randn(clean.shape, generator=g)
        outputs = {
            m: clean + (0.01 * (k + 1)) * torch.randn(clean.shape, generator=g)
            for k, m in enumerate(METHODS)
        }
        out.append(
            {
                "name": f"img{i}",
                "level": LEVELS[i],
                "clean": clean,
                "noisy": noisy,
                "outputs": outputs,
            }
        )
    return out


def _visualisation(weights: bool = True) -> dict:
    g = torch.Generator().manual_seed(3)
    n, k, h, w = 8, 5, 40, 48
    return {
        "pixel": (20, 30),
        "kernels": torch.randn(n, k * k, generator=g) * 0.1,
        "weights": torch.rand(n, h, w, generator=g) if weights else None,
        "residuals": 0.05 * torch.randn(n, h, w, generator=g),
        "frames": _smooth(1, h, w, seed=4).expand(n, h, w) + 0.05 * torch.randn(n, h, w),
    }


def _sources(text: str) -> list[str]:
    return re.findall(r'src="([^"]*)"', text)


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    path = write_html_report(tmp_path, _table(), _examples(), _visualisation())
    assert path == tmp_path / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    low = text.lower()
    assert "http://" not in low and "https://" not in low
    assert 'src="file' not in low and "url(" not in low and "<link" not in low
    srcs = _sources(text)
    # chart + 2 examples x (clean, noisy, 3 methods) x (full, zoom) + 4 visualisation rows
    assert len(srcs) == 1 + 2 * 5 * 2 + 4
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        img.load()
        assert img.format == "PNG" and img.width > 0 and img.height > 0
    for name in METHODS:
        assert html.escape(name) in text
    assert "MKPN & co <fast>" not in text  # escaped, never raw
    for level in LEVELS:
        assert f'<th colspan="2">{level}</th>' in text
    assert "s / MP" in text and text.count("<th>PSNR</th><th>SSIM</th>") == len(LEVELS)
    assert html.escape("burstkpn bench --test-set <synthetic>") in text
    # the best PSNR and SSIM per level are bold, and nothing else is
    psnr_cols = list(zip(*PSNR.values(), strict=True))
    ssim_cols = list(zip(*SSIM.values(), strict=True))
    for col, digits in [(c, 2) for c in psnr_cols] + [(c, 4) for c in ssim_cols]:
        vals = [v for v in col if v is not None]
        for v in vals:
            bold = f"<b>{v:.{digits}f}</b>" in text
            assert bold == (v == max(vals)), (v, vals)
    assert text.count("<b>") == 2 * len(LEVELS)
    assert "<td>\u2013</td>" in text  # missing PSNR / SSIM / s per MP
    assert "37.03" in text and "0.9633" in text and "0.123" in text
    assert "trained 2h" in text
    for heading in ("Per-frame 5&times;5 kernels", "Weight maps", "Residual maps", "Noisy frames"):
        assert heading in text


def test_report_without_visualisation_rows_and_tiny_examples(tmp_path: Path) -> None:
    tiny = torch.rand(3, 12, 14) * 0.5  # too small for the 8-px metric border: no dB numbers
    ex = {
        "name": "tiny",
        "level": "gain1",
        "clean": tiny,
        "noisy": tiny + 0.1,
        "outputs": {"KPN": tiny},
    }
    vis = _visualisation(weights=False)
    path = write_html_report(tmp_path / "sub", _table(), [ex], vis, title="T <1>")
    text = path.read_text(encoding="utf-8")
    assert "<title>T &lt;1&gt;</title>" in text
    assert "Weight maps" not in text and "Residual maps" in text
    assert " dB</span>" not in text
    assert len(_sources(text)) == 1 + 3 * 2 + 3
    # no examples, no visualisation: still a valid report with the table and chart
    text = write_html_report(tmp_path, _table(), []).read_text(encoding="utf-8")
    assert "<h2>Examples</h2>" not in text and len(_sources(text)) == 1


def test_zoom_window_finds_the_detail() -> None:
    img = np.zeros((100, 120, 3))
    img[60:70, 20:30] = np.indices((10, 10)).sum(0)[..., None] % 2  # a checkerboard patch
    y, x, s = zoom_window(img, 16)
    assert s == 16 and y <= 60 and y + s >= 70 and x <= 20 and x + s >= 30
    assert zoom_window(np.ones((30, 40, 1)), 48) == (0, 5, 30)  # flat, small: centre, clamped


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Chromium not installed (apt-get install chromium)")
    path = write_html_report(tmp_path, _table(), _examples(), _visualisation())
    png = tmp_path / "report.png"
    assert render_screenshot(path, png, width=1280, height=2000, timeout=120)
    shot = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
    assert shot.shape[1] >= 1000 and shot.shape[0] >= 1000
    assert shot.std() > 10  # not a blank page
