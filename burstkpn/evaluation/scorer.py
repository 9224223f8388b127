"""The one evaluation loop: methods x test items -> one row per item and method (PSNR, SSIM,
shadow bias, seconds, megapixels). Scores are :func:`burstkpn.metrics.psnr` /
:func:`~burstkpn.metrics.ssim` per item (gamma-corrected, clipped, 8-pixel border)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from burstkpn.evaluation.methods import Method
from burstkpn.metrics import BORDER, DARK_REACH, dark_bias, psnr, ssim


def item_label(item) -> tuple[str, str, torch.Tensor]:
    """``(image, level, clean)`` of a test item: the row's labels and its ground truth."""
    return item.image, item.level, item.clean


def _dark(out: torch.Tensor, clean: torch.Tensor, linear: bool, border: int) -> dict:
    """The row's shadow brightness (:func:`~burstkpn.metrics.dark_bias`): mean signed sRGB error
    over the clean values below 0.15 (``None`` without any) and their count (for pooling), and
    the same inside dark regions (``dark_region_*``: dark within 7 px)."""
    row = {}
    for key, reach in (("dark", 0), ("dark_region", DARK_REACH)):
        bias, count = dark_bias(out, clean, reach=reach, linear=linear, border=border)
        n = int(count[0])
        row[f"{key}_bias"] = float(bias[0]) if n else None
        row[f"{key}_count"] = n
    return row


@dataclass
class Scorer:
    """Runs ``methods`` on test items, one at a time (:meth:`run`), and collects a row per item
    and method in :attr:`rows`. ``label``: ``(image, level, ground truth)`` of an item;
    ``linear`` / ``border``: how :func:`~burstkpn.metrics.psnr` and ``ssim`` read the images
    (``border`` may be a function of the item); ``refused``: exception types on which a method
    is dropped for the rest of the evaluation (its rows removed, the reason in its note)
    instead of stopping it."""

    methods: dict[str, Method]
    notes: dict[str, str] = field(default_factory=dict)
    label: Callable[[Any], tuple[str, str, torch.Tensor]] = item_label
    linear: bool = True
    border: int | Callable[[Any], int] = BORDER
    refused: tuple[type[BaseException], ...] = ()
    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.methods = dict(self.methods)
        for name in self.methods:
            self.notes.setdefault(name, "")

    def run(
        self,
        item,
        outputs: dict[str, torch.Tensor] | None = None,
        *,
        before: Callable[[str], None] | None = None,
        after: Callable[[str, torch.Tensor | None, dict | None], None] | None = None,
    ) -> list[dict]:
        """Every method on ``item``, each timed and scored; returns (and adds to :attr:`rows`)
        the item's rows. ``outputs``: a dict that receives the outputs by method name;
        ``before(name)`` / ``after(name, output, row)`` around each method (``after`` gets
        ``None`` twice for a refused method)."""
        image, level, clean = self.label(item)
        border = self.border(item) if callable(self.border) else self.border
        megapixels = clean.shape[-2] * clean.shape[-1] / 1e6
        rows = []
        for name, fn in list(self.methods.items()):
            if before is not None:
                before(name)
            t0 = time.perf_counter()
            try:
                out = fn(item).float()
            except self.refused as exc:
                self.drop(name, f"skipped: {exc}")
                if after is not None:
                    after(name, None, None)
                continue
            seconds = time.perf_counter() - t0
            row = {
                "method": name,
                "image": image,
                "level": level,
                "psnr": float(psnr(out, clean, linear=self.linear, border=border)[0]),
                "ssim": float(ssim(out, clean, linear=self.linear, border=border)[0]),
                **_dark(out, clean, self.linear, border),
                "seconds": seconds,
                "megapixels": megapixels,
            }
            rows.append(row)
            self.rows.append(row)
            if outputs is not None:
                outputs[name] = out
            if after is not None:
                after(name, out, row)
        return rows

    def drop(self, name: str, note: str) -> None:
        """Stop running ``name``: its rows go, ``note`` says why (printed)."""
        self.notes[name] = note
        print(f"bench: {name} {note}")
        del self.methods[name]
        self.rows = [r for r in self.rows if r["method"] != name]


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the rows, the methods that ran (in order), every
    method's note, and the outputs of the items ``keep`` chose (``(item, {method: output})``)."""

    rows: list[dict]
    methods: list[str]
    notes: dict[str, str]
    kept: list[tuple[Any, dict[str, torch.Tensor]]]


def evaluate(
    items: Iterable,
    methods: Mapping[str, Method],
    *,
    notes: Mapping[str, str] | None = None,
    keep: Callable[[Any], bool] | None = None,
    total: int | None = None,
    desc: str = "evaluate",
    unit: str = "item",
    progress: bool = True,
    leave: bool = True,
) -> Evaluation:
    """Every method on every item (``items`` may be lazy: each is loaded, scored by every
    method and let go), with a progress bar of ``total`` items."""
    scorer = Scorer(dict(methods), dict(notes or {}))
    kept = []
    bar = tqdm(items, total=total, desc=desc, unit=unit, disable=not progress, leave=leave)
    for item in bar:
        outputs = {} if keep is not None and keep(item) else None
        scorer.run(item, outputs)
        if outputs is not None:
            kept.append((item, outputs))
    return Evaluation(scorer.rows, list(scorer.methods), scorer.notes, kept)
