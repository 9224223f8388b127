"""Inference: one runner (device, precision, tiling) and one resolver (name or checkpoint ->
model). Everything that turns a model into a restored image goes through here."""

from burstkpn.inference.resolve import describe, resolve_model, try_resolve, weights_name
from burstkpn.inference.runner import DEFAULT_TILE, Runner, fit_frames, runner_for
from burstkpn.inference.tiling import receptive_radius, tiled_forward

__all__ = [
    "DEFAULT_TILE",
    "Runner",
    "describe",
    "fit_frames",
    "receptive_radius",
    "resolve_model",
    "runner_for",
    "tiled_forward",
    "try_resolve",
    "weights_name",
]
