"""Training datasets: random items made on the fly from clean photos, clips or dataset folders.

Seeding: item ``i`` of epoch ``e`` is generated from its own ``torch.Generator`` seeded with
``derive_seed(seed, e, i)`` (:class:`SeededEpochDataset`, the base of every dataset here), so
items do not depend on the DataLoader's workers or on what was drawn before them. The datasets
synthesised from clean images share their crop, channel and noise-range options through
:class:`SyntheticDataset`.

- :class:`SyntheticBurstDataset` (``burst``): synthetic bursts from photos ([AME-KPN] section
  3.1);
- :class:`SyntheticClipDataset` (``video``): noisy clips of ``2 tau + 1`` frames for
  ``deform3d``, from photos with synthetic motion and / or clean clips on disk;
- :class:`PairedImageDataset`, :class:`SyntheticNoisyPairs`, :class:`SyntheticBlurPairs`
  (``pairs``): degraded / clean pairs from a dataset folder (SIDD, GoPro, PolyU), and
  single-image pairs made from photos ([DCN-LKA]).
"""

from burstkpn.data.datasets.base import SeededEpochDataset, SyntheticDataset
from burstkpn.data.datasets.burst import SyntheticBurstDataset
from burstkpn.data.datasets.pairs import (
    PairedImageDataset,
    SyntheticBlurPairs,
    SyntheticNoisyPairs,
)
from burstkpn.data.datasets.video import SyntheticClipDataset

__all__ = [
    "PairedImageDataset",
    "SeededEpochDataset",
    "SyntheticBlurPairs",
    "SyntheticBurstDataset",
    "SyntheticClipDataset",
    "SyntheticDataset",
    "SyntheticNoisyPairs",
]
