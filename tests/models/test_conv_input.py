"""The network input written in one pass (:func:`burstkpn.models.common.conv_input` with channel
blocks) equals the reference chain it replaces: reorder, ``torch.cat``, ``F.pad`` (reflect,
replicate for tiny inputs) and the weight's memory format, bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from burstkpn.models import create_model
from burstkpn.models.common import conv_input, fold_channels, like_weight, noise_planes


def _reference(blocks, multiple, weight):
    b, (h, w) = blocks[0].shape[0], blocks[0].shape[-2:]
    x = torch.cat([t.reshape(b, -1, h, w).to(blocks[0].dtype) for t in blocks], 1)
    ph, pw = (-h) % multiple, (-w) % multiple
    mode = "reflect" if ph < h and pw < w else "replicate"
    return like_weight(F.pad(x, (0, pw, 0, ph), mode=mode), weight)


def _weight(channels_last: bool) -> torch.Tensor:
    w = torch.randn(4, 3, 3, 3)
    return w.contiguous(memory_format=torch.channels_last) if channels_last else w


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(16, 16), (13, 21), (31, 8), (9, 17), (3, 5), (1, 1)])
def test_blocks_match_cat_pad_and_format(size, channels_last):
    torch.manual_seed(0)
    h, w = size
    frames = torch.randn(2, 4, 3, h, w).transpose(1, 2)  # a non-contiguous (B, C, N, H, W) view
    noise = torch.rand(2, 1, h, w).expand(2, 3, h, w)  # an expanded block
    weight = _weight(channels_last)
    before = frames.clone()
    got = conv_input([frames, noise], 8, weight)
    want = _reference([frames, noise], 8, weight)
    assert got.shape == want.shape == (2, 15, h + (-h) % 8, w + (-w) % 8)
    assert torch.equal(got, want)
    assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert torch.equal(frames, before)  # the input is left alone


def test_blocks_cast_to_the_first_blocks_dtype():
    frames = torch.randn(1, 2, 10, 12, dtype=torch.bfloat16)
    noise = torch.rand(1, 1, 10, 12, dtype=torch.float64)
    got = conv_input([frames, noise], 4, _weight(True))
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, _reference([frames, noise], 4, _weight(True)))


def test_a_single_tensor_that_needs_nothing_is_returned_as_is():
    x = torch.randn(1, 3, 16, 16)
    assert conv_input(x, 8, _weight(False)) is x


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
def test_network_input_matches_the_reference_chain(color, channels):
    """Per-plane (planes as batch items) and colour (plane-major stack, grey repeated to three
    planes) layouts of eq. (1)'s input, odd sizes, a channels_last model."""
    model = create_model("kpn", "tiny", color=color).eval()
    model = model.to(memory_format=torch.channels_last)
    b, n, h, w = 2, model.num_frames, 19, 26
    burst = torch.rand(b, n, channels, h, w)
    nmap = torch.rand(b, channels, h, w) * 0.1
    frames = burst.expand(b, n, 3, h, w) if color else burst
    folded = fold_channels(frames)
    if color:
        folded = folded.reshape(b, 3 * n, h, w)
        noise = nmap.expand(b, 3, h, w)
    else:
        noise = noise_planes(nmap, (b, channels, h, w))
    want = _reference([folded, noise], model.backbone.multiple, model.backbone.encoder[0][0].weight)
    got = model.network_input(burst, nmap)
    assert torch.equal(got, want)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_a_traced_graph_records_the_stacking():
    """Tracing (the ONNX exporter's route) takes the plain path: the traced graph stacks and
    pads a new input as the eager function does (writes into an empty buffer would be lost)."""
    weight = _weight(True)

    def fn(frames, noise):
        return conv_input([frames, noise], 8, weight)

    traced = torch.jit.trace(fn, (torch.rand(1, 3, 2, 16, 16), torch.rand(1, 3, 16, 16)))
    frames, noise = torch.rand(1, 3, 2, 16, 16), torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(traced(frames, noise), fn(frames, noise), atol=0, rtol=0)
