"""The one inference layer (burstkpn.inference): the runner fits frames by the model's traits,
tiles within the tiler's bound, refuses bad tiles, and the resolver maps names, shipped weights
and checkpoint paths to models the same way for every caller."""

from __future__ import annotations

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.inference import (
    Runner,
    fit_frames,
    resolve_model,
    runner_for,
    tiled_forward,
    try_resolve,
    weights_name,
)
from burstkpn.models import create_model, save_model
from tests.conftest import gen


def test_fit_frames_repeats_cyclically_or_takes_the_first():
    assert fit_frames(torch.arange(5).view(1, 5), 8).tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    assert fit_frames(torch.arange(5).view(1, 5), 3).tolist() == [[0, 1, 2]]
    assert fit_frames(torch.arange(5).view(1, 5), 1).tolist() == [[0]]


@pytest.mark.parametrize(
    ("name", "frames_in", "frames_read"),
    [("kpn", 5, 8), ("kpn", 10, 8), ("deform2d", 5, 1), ("deform3d", 5, 5)],
)
def test_frames_for_follows_the_traits(name, frames_in, frames_read):
    runner = Runner(create_model(name, "tiny"), precision="fp32")
    burst = torch.rand(1, frames_in, 3, 8, 8, generator=gen())
    fitted = runner.frames_for(burst)
    assert fitted.shape[1] == frames_read
    assert torch.equal(fitted[:, 0], burst[:, 0])  # the reference stays first


def test_clip_model_needs_its_window():
    runner = Runner(create_model("deform3d", "tiny"), precision="fp32")
    with pytest.raises(InputError, match="takes 5 frames"):
        runner.frames_for(torch.rand(1, 3, 3, 8, 8))


def test_runner_equals_the_model_and_its_tiles():
    torch.manual_seed(0)
    model = create_model("ame_kpn", "tiny").eval()
    burst = torch.rand(1, 8, 3, 40, 52, generator=gen(1))
    nmap = torch.full((1, 3, 40, 52), 0.05)
    runner = Runner(model, precision="fp32")
    whole = runner(burst, nmap, tile=0)
    with torch.no_grad():
        direct = model(burst, nmap).image
    assert whole.dtype == torch.float32 and whole.shape == (1, 3, 40, 52)
    assert torch.allclose(whole, direct, atol=1e-5)
    tiled = runner(burst, nmap, tile=16)
    assert torch.allclose(tiled, direct, atol=1e-5)  # exact tiling for the KPN family
    assert torch.equal(tiled, tiled_forward(runner.model, burst, nmap, tile=16))
    with pytest.raises(InputError, match="--tile must be 0"):
        runner(burst, nmap, tile=-1)


def test_runner_for_keeps_a_runner_and_its_settings():
    runner = Runner(create_model("kpn", "tiny"), precision="fp32")
    assert runner_for(runner) is runner
    assert runner.precision == "fp32" and runner.device == torch.device("cpu")
    assert not runner.model.training


def test_forward_gives_the_models_output_with_aux():
    model = create_model("ame_kpn", "tiny")
    out = Runner(model, precision="fp32").forward(
        torch.rand(1, 8, 1, 16, 16), torch.full((1, 1, 16, 16), 0.05), return_aux=True
    )
    assert "kernels" in out.aux and out.image.shape == (1, 1, 16, 16)


def test_resolve_names_paths_and_models(tmp_path):
    model = create_model("kpn", "tiny")
    assert resolve_model(model) is model
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    loaded = resolve_model(str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert try_resolve(str(path))[1] == f"checkpoint {path}"
    with pytest.raises(InputError, match="no such checkpoint"):
        resolve_model(str(tmp_path / "missing.safetensors"))
    with pytest.raises(InputError, match="only those are loaded"):
        (tmp_path / "m.bin").write_bytes(b"x")
        resolve_model(str(tmp_path / "m.bin"))
    assert weights_name("dcn_lka", "deblur") == "dcn_lka_deblur"
    assert weights_name("kpn", "denoise") == "kpn"


def test_a_checkpoint_note_says_its_steps_and_alignment(tmp_path):
    # a bench row of a weight file (e.g. weights/compare/ame_kpn_20k) says what its card says
    path = tmp_path / "k.safetensors"
    save_model(create_model("kpn", "tiny", prealign=True), path, steps=123)
    note = try_resolve(str(path))[1]
    assert note == f"checkpoint {path} (123 training steps; frames aligned by whole pixels first)"
    save_model(create_model("kpn", "tiny"), path, step=7)
    assert try_resolve(str(path))[1] == f"checkpoint {path} (7 training steps)"


def test_missing_shipped_weights_are_a_skip_note(tmp_path, monkeypatch):
    from burstkpn.models import factory

    monkeypatch.setattr(factory, "weights_dir", lambda: tmp_path)
    model, note = try_resolve("kpn", "denoise")
    assert model is None and note.startswith("skipped: no shipped weights for 'kpn'")
    model, note = try_resolve("dcn_lka", "deblur")
    assert model is None and "dcn_lka_deblur" in note
    with pytest.raises(InputError, match="no shipped weights"):
        resolve_model("kpn")


def test_runner_aligns_the_frames_of_a_prealign_model_by_whole_pixels():
    """A model that declares prealign reads its burst moved onto the reference by whole
    pixels; ``aligned=True`` (the caller did it) skips that; other models read it as given."""
    from burstkpn.ops.align import align_whole_pixels, shift_whole_pixels

    torch.manual_seed(0)
    g = gen(2)
    scene = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 48, 48, generator=g), 3, 1, 1)
    moves = torch.tensor([[0, 0], [3, -2], [-4, 1], [2, 5]], dtype=torch.float64).numpy()
    burst = torch.stack([shift_whole_pixels(scene, -m[None])[0] for m in moves])[None]
    burst = burst + 0.01 * torch.randn(burst.shape, generator=g)
    nmap = torch.full((1, 3, 48, 48), 0.01)
    model = create_model("ame_kpn", "tiny", num_frames=4, prealign=True)
    runner = Runner(model, precision="fp32")
    assert runner.traits.prealign
    aligned, shifts = align_whole_pixels(burst)
    assert (shifts[0] == moves).all()
    out = runner(burst, nmap, tile=0)
    assert torch.allclose(out, runner(aligned, nmap, tile=0, aligned=True), atol=1e-6)
    assert not torch.allclose(out, runner(burst, nmap, tile=0, aligned=True), atol=1e-4)
    plain = Runner(create_model("ame_kpn", "tiny", num_frames=4), precision="fp32")
    plain.model.load_state_dict(model.state_dict())
    assert torch.allclose(plain(burst, nmap, tile=0), runner(burst, nmap, tile=0, aligned=True))
