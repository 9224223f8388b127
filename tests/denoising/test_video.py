from __future__ import annotations

import numpy as np
import pytest
import torch

from burstkpn.cli import main
from burstkpn.models import create_model, save_model

av = pytest.importorskip("av")


def _make_video(path, n=6, h=48, w=64, fps=12):
    container = av.open(str(path), mode="w")
    stream = container.add_stream("ffv1", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "bgr0"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        base = 0.5 + 0.3 * np.sin((xx + 2 * i) / 6.0) * np.cos(yy / 5.0)
        img = np.repeat(base[:, :, None], 3, 2) + rng.normal(0, 0.05, (h, w, 3))
        arr = (img.clip(0, 1) * 255).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


@pytest.fixture
def tiny_ckpt(tmp_path):
    torch.manual_seed(0)
    return save_model(create_model("kpn", "tiny"), tmp_path / "tiny.safetensors")


@pytest.mark.parametrize("out_name", ["out.mkv", "out.mp4", "frames"])
def test_video_sliding_window(tmp_path, tiny_ckpt, out_name):
    src = tmp_path / "in.mkv"
    _make_video(src)
    out = tmp_path / out_name
    code = main(["denoise", str(src), "-o", str(out), "--model", str(tiny_ckpt), "--quiet"])
    assert code == 0
    if out.suffix:
        with av.open(str(out)) as c:
            s = c.streams.video[0]
            frames = list(c.decode(s))
            assert len(frames) == 6 and float(s.average_rate) == 12
            assert (frames[0].width, frames[0].height) == (64, 48)
    else:
        assert len(list(out.glob("frame_*.png"))) == 6


def test_bad_videos(tmp_path, tiny_ckpt, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    one = tmp_path / "one.mkv"
    _make_video(one, n=1)
    for src, message in (
        (bad, "cannot read video"),
        (one, "single frame"),
        (tmp_path / "none.mkv", "no such video"),
    ):
        code = main(
            [
                "denoise",
                str(src),
                "-o",
                str(tmp_path / "o.mkv"),
                "--model",
                str(tiny_ckpt),
                "--quiet",
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.mkv").exists()
