"""Declared model traits (burstkpn.models.traits): equal to what the callers used to guess from
attribute names, the same when read from a checkpoint's metadata alone, and refused for objects
that declare none."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from burstkpn.errors import InputError
from burstkpn.models import create_model, list_models, save_model
from burstkpn.models.traits import (
    ModelTraits,
    model_traits,
    traits_from_config,
    traits_from_metadata,
)

# what the package read before the traits existed (denoising.py, restoration.py,
# models/tiling.py, bench/speed.py, bench/video.py, bench/quality.py, train.py)
DEFAULT_MARGIN = 32  # restoration.DEFAULT_MARGIN
ALIGN_THRESHOLD = 2.0  # denoising.ALIGN_THRESHOLD
# hint attributes the traits replaced (nothing reads them now): their values back then
DROPPED = {
    "DCNLKA": {"single_image": lambda m: True},
    "DeformableKernelNet": {"burst_frames": lambda m: m.num_frames},
}


def old_attr(m, name: str, default):
    dropped = DROPPED.get(type(m).__name__, {})
    return dropped[name](m) if name in dropped else getattr(m, name, default)


def old_single(m) -> bool:  # restoration.is_single_image
    return bool(old_attr(m, "single_image", False)) or getattr(m, "num_frames", 0) == 1


def old_clip(m) -> bool:  # restoration.is_video_model
    return getattr(m, "tau", 0) >= 1


def old_multiple(m) -> int:  # tiling._multiple
    if hasattr(m, "backbone"):
        return m.backbone.multiple
    if hasattr(m, "multiple"):
        return m.multiple
    return getattr(getattr(m, "offset_net", None), "multiple", 1)


def old_speed_frames(m, default: int) -> int:  # bench/speed.py
    return old_attr(m, "burst_frames", None) or (1 if old_single(m) else default)


def assert_old_guesses(m, t: ModelTraits) -> None:
    assert t.kind == ("clip" if old_clip(m) else "single" if old_single(m) else "burst")
    assert t.frames == getattr(m, "num_frames", 8)  # denoising, bench/video
    assert t.tile_margin == getattr(m, "tile_margin", None)  # denoising, tiling, bench/methods
    restore_margin = DEFAULT_MARGIN if t.tile_margin is None else t.tile_margin
    assert restore_margin == getattr(m, "tile_margin", DEFAULT_MARGIN)  # restoration
    assert t.blind == getattr(m, "blind", True)  # restoration, train
    if t.kind == "clip":  # denoising's alignment threshold
        assert t.max_offset == getattr(m, "max_offset", ALIGN_THRESHOLD)
    assert t.size_multiple == old_multiple(m)
    assert t.independent_channels == getattr(m, "independent_channels", False)
    for default in (8, 3):
        kind_frames = default if t.kind == "burst" else t.frames
        assert kind_frames == old_speed_frames(m, default)


VARIANTS = [(name, {}) for name in list_models()] + [
    ("kpn", {"num_frames": 1}),
    ("kpn", {"blind": True, "direct": True}),
    ("mkpn", {"num_frames": 4}),
    ("ame_kpn", {"blind": True}),
    ("deform2d", {"blind": True, "max_offset": 3.5}),
    ("deform3d", {"tau": 1, "kernel_size": 5}),
    ("dcn_lka", {"num_blocks": 1, "kernel_size": 4}),
]


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
def test_traits_equal_the_old_attribute_guesses(name, kwargs):
    model = create_model(name, "cpu", **kwargs)
    traits = model_traits(model)
    assert isinstance(traits, ModelTraits)
    assert_old_guesses(model, traits)
    assert traits_from_config(name, {"size": "cpu", **kwargs}) == traits


@pytest.mark.parametrize("size", ["tiny", "paper"])
@pytest.mark.parametrize("name", list_models())
def test_traits_from_config_match_the_built_model_at_every_size(name, size):
    assert traits_from_config(name, {"size": size}) == model_traits(create_model(name, size))


def test_declared_kinds():
    kinds = {name: model_traits(create_model(name, "tiny")).kind for name in list_models()}
    assert kinds == {
        "kpn": "burst",
        "mkpn": "burst",
        "ame_kpn": "burst",
        "deform2d": "single",
        "deform3d": "clip",
        "dcn_lka": "single",
    }


@pytest.mark.parametrize(
    ("name", "kwargs"), [("deform3d", {"tau": 1}), ("kpn", {}), ("ame_kpn", {"prealign": True})]
)
def test_traits_from_a_checkpoint_equal_the_built_model(name, kwargs, tmp_path):
    model = create_model(name, "tiny", **kwargs)
    path = save_model(model, tmp_path / f"{name}.safetensors", step=1)
    assert traits_from_metadata(path) == model_traits(model)


def test_traits_through_wrappers():
    model = create_model("deform3d", "tiny")
    assert model_traits(torch.nn.DataParallel(model)) == model_traits(model)


def test_an_object_without_traits_is_refused():
    with pytest.raises(TypeError, match="Conv2d declares no model traits"):
        model_traits(torch.nn.Conv2d(1, 1, 3))
    with pytest.raises(TypeError, match="declares no model traits"):
        model_traits(object())


def test_bad_configs_are_one_line_errors():
    with pytest.raises(InputError, match="unknown model 'nope'"):
        traits_from_config("nope")
    with pytest.raises(InputError, match="bad arguments for model 'kpn'"):
        traits_from_config("kpn", {"tau": 2})
    with pytest.raises(InputError, match="unknown model size"):
        traits_from_config("deform2d", {"size": "huge"})


def test_traits_are_frozen_and_consistent():
    traits = model_traits(create_model("kpn", "tiny"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        traits.frames = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        dataclasses.replace(traits, kind="single")  # 8 frames are not one image


def test_onnx_model_declares_the_traits_of_its_source(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from burstkpn.export import OnnxModel

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for prealign in (False, True):
        model = create_model("ame_kpn", "tiny", num_frames=4, prealign=prealign)
        runner = OnnxModel(model, threads=1)
        assert_old_guesses(runner, model_traits(runner))
        expected = dataclasses.replace(model_traits(model), tile_margin=runner.tile_margin)
        assert model_traits(runner) == expected and expected.prealign == prealign
