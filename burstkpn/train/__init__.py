"""Training: ``burstkpn train`` for every model, resumable and distributed.

Modules: :mod:`~burstkpn.train.config` (the run's options, ``config.yaml``),
:mod:`~burstkpn.train.data` (training data, validation set, prefetching),
:mod:`~burstkpn.train.loop` (the loop, DDP, validation), :mod:`~burstkpn.train.checkpoint`
(state files, EMA, ``--init``), :mod:`~burstkpn.train.plots` (``loss.png``) and
:mod:`~burstkpn.train.export` (``export-weights``: weights and card, scored through
:mod:`burstkpn.evaluation`; nothing here imports :mod:`burstkpn.bench`).

Schedule and loss follow [AME-KPN] section 3.2 and eq. (8): Adam at 1e-4, multiplied by
10^-0.05 every epoch (``epoch_steps`` steps) down to 5e-6; the annealed loss with
alpha = 0.9998, beta = 100 and the step counter t carried across resumes.

Reproducibility: the burst of global sample index i is generated from a generator seeded by
``(seed, i)`` (see :class:`~burstkpn.data.datasets.SyntheticBurstDataset`), and step s uses the
samples ``[s * batch, (s + 1) * batch)``; so a run is the same with any number of DataLoader
workers, after a resume, and split over DDP ranks (rank r takes its slice of the global batch).

Tasks: ``burst`` (the default for burst models) trains on synthetic bursts as above;
``denoise`` and ``deblur`` train single-image models ([DCN-LKA]) on degraded / clean pairs
(:mod:`burstkpn.data.datasets`): synthetic pairs made from a folder of clean photos (our noise
model; random motion blur), or a paired folder in SIDD / GoPro / PolyU layout (detected), with
the MSE loss of [DCN-LKA], eq. (7), on sRGB values (or ``loss: gamma_l1``), and validation PSNR on
fixed synthetic pairs from the validation photos. ``video`` (the default for clip models,
``deform3d``) trains on clips of ``2 tau + 1`` frames (:mod:`burstkpn.data.degrade.video`): photos
with synthetic camera motion and / or clean clips from ``clips`` (a folder of frame folders), with
[DeformKernels] eq. (11) (eq. 9 plus the group-annealed term of eq. 10; ``loss: gamma_l1``
gives eq. 9 alone, Table 4's "w/o annealing term"), validated at the paper's Low / High levels.
The task, the loss and the data layout are resolved when a run starts and stored in
``config.yaml``, so ``--resume`` continues the same.

Run folder::

    config.yaml        resolved configuration
    metrics.jsonl      one JSON line per logged step / validation
    last.safetensors   model (with card) + last.optim.safetensors (Adam state, step)
    best.safetensors   best validation PSNR so far
    loss.png           loss and validation curves
"""

from burstkpn.train.checkpoint import (
    INIT_CARD,
    _init_path,
    load_ema,
    load_state,
    save_state,
    start_from_weights,
    update_ema,
)
from burstkpn.train.config import (
    DATA_LAYOUTS,
    LOSSES,
    LR_SCHEDULES,
    TASKS,
    TrainConfig,
    read_config,
    resolve_task,
    write_config,
)
from burstkpn.train.data import (
    VAL_LEVELS,
    VIDEO_VAL_LEVELS,
    make_train_dataset,
    make_val_set,
    prefetched,
)
from burstkpn.train.export import export_weights, training_seconds
from burstkpn.train.loop import RUN_FILES, learning_rate, train, validate
from burstkpn.train.plots import plot_metrics

__all__ = [
    "DATA_LAYOUTS",
    "INIT_CARD",
    "LOSSES",
    "LR_SCHEDULES",
    "RUN_FILES",
    "TASKS",
    "VAL_LEVELS",
    "VIDEO_VAL_LEVELS",
    "TrainConfig",
    "_init_path",
    "export_weights",
    "learning_rate",
    "load_ema",
    "load_state",
    "make_train_dataset",
    "make_val_set",
    "plot_metrics",
    "prefetched",
    "read_config",
    "resolve_task",
    "save_state",
    "start_from_weights",
    "train",
    "training_seconds",
    "update_ema",
    "validate",
    "write_config",
]
