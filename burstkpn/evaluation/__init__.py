"""The one evaluation loop: methods x test items -> one row per item and method (PSNR, SSIM,
seconds, megapixels), and the per-level summary of those rows.

``bench quality``, ``bench video`` (and its motion sweep), ``bench restore``, ``bench real``,
``bench ablation`` and the card evaluation of ``burstkpn export-weights``
(:mod:`burstkpn.train.export`) all score through :class:`Scorer` / :func:`evaluate`; it lives
outside :mod:`burstkpn.bench` so that training never imports the benches.

A *method* is a callable from a test item to the restored reference ``(1, C, H, W)`` (linear
light unless the scoring says otherwise). An *item* has ``image`` and ``level`` (the row's
labels), ``clean`` (the ground truth) and whatever its methods read: a
:class:`~burstkpn.data.testsets.burst.TestBurst` (``noisy``, ``noise_map``, ``sigma_r``,
``sigma_s``, ``offsets``), a :class:`~burstkpn.data.testsets.video.TestWindow`, a
:class:`~burstkpn.data.testsets.deblur.RestorePair` (``degraded``). Scores are
:func:`burstkpn.metrics.psnr` / :func:`~burstkpn.metrics.ssim` per item (gamma-corrected,
clipped, 8-pixel border), averaged per level by :func:`summarize`.

Model methods (:func:`model_method`, :func:`model_restore_method`) run through the one runner
(:class:`~burstkpn.inference.Runner`); :func:`reference` / :func:`degraded` are the input as it
is, the anchor every table shows. The test-item sources shared by the benches and the trainer's
export are here too (:func:`select_entries`, :func:`select_windows`, :func:`restore_items`).

Modules: :mod:`~burstkpn.evaluation.methods` (the methods), :mod:`~burstkpn.evaluation.scorer`
(the loop), :mod:`~burstkpn.evaluation.testsets` (test items and the evaluations on them),
:mod:`~burstkpn.evaluation.summary` (the per-level summary); everything is importable from
here.
"""

from burstkpn.evaluation.methods import (
    Method,
    degraded,
    model_method,
    model_restore_method,
    reference,
)
from burstkpn.evaluation.scorer import Evaluation, Scorer, evaluate, item_label
from burstkpn.evaluation.summary import mean, pooled_dark_bias, summarize
from burstkpn.evaluation.testsets import (
    evaluate_bursts,
    evaluate_pairs,
    evaluate_windows,
    restore_items,
    select_entries,
    select_windows,
)

__all__ = [
    "Evaluation",
    "Method",
    "Scorer",
    "degraded",
    "evaluate",
    "evaluate_bursts",
    "evaluate_pairs",
    "evaluate_windows",
    "item_label",
    "mean",
    "model_method",
    "model_restore_method",
    "pooled_dark_bias",
    "reference",
    "restore_items",
    "select_entries",
    "select_windows",
    "summarize",
]
