"""The methods of an evaluation: callables from a test item to the restored reference
``(1, C, H, W)``. Model methods run through the one runner (:class:`~burstkpn.inference.Runner`);
:func:`reference` / :func:`degraded` are the input as it is, the anchor every table shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from burstkpn.data.testsets.deblur import RestorePair
from burstkpn.errors import InputError
from burstkpn.inference import DEFAULT_TILE, Runner, runner_for
from burstkpn.restoration import restore_image

Method = Callable[[Any], torch.Tensor]


def reference(item) -> torch.Tensor:
    """The noisy reference frame as it is (a burst's first frame, a window's centre)."""
    return item.noisy[:, 0].float()


def degraded(pair: RestorePair) -> torch.Tensor:
    """The degraded image of a restoration pair as it is."""
    return pair.degraded.float()


def model_method(
    model: torch.nn.Module | Runner, precision: str = "auto", tile: int = DEFAULT_TILE
) -> Method:
    """A model as a method, through the one runner (:class:`~burstkpn.inference.Runner`:
    channels_last, bfloat16 autocast where native, tiled above ``tile`` px). The item's frames
    are fitted to what the model reads (:meth:`Runner.frames_for`): single-image models get
    the reference, burst models their burst length (cyclic repeats of a shorter window), clip
    models exactly their window."""
    runner = runner_for(model, precision=precision)

    def run(item) -> torch.Tensor:
        return runner(runner.frames_for(item.noisy), item.noise_map, tile=tile)

    run.model = runner.model  # type: ignore[attr-defined]
    return run


def model_restore_method(model: torch.nn.Module, tile: int = DEFAULT_TILE) -> Method:
    """A single-image model as a restoration method (:func:`~burstkpn.restoration.
    restore_image` on the pair's degraded image, tiled above ``tile`` px)."""
    runner = runner_for(model)
    if runner.traits.kind != "single":
        raise InputError("bench restore takes single-image models; this is a burst model")

    def run(pair: RestorePair) -> torch.Tensor:
        return restore_image(pair.degraded[0], runner, linear=True, tile=tile)[None]

    run.model = runner.model  # type: ignore[attr-defined]
    return run
