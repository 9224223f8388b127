from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The workplace's data folder; tests that need it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not available")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/NAME.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def photo_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A folder of three small smooth 8-bit colour photos (200x180) and one 16-bit gray one."""
    import imageio.v3 as iio

    folder = tmp_path / "photos"
    folder.mkdir()
    yy, xx = np.mgrid[0:180, 0:200] / 50.0
    for i in range(3):
        img = np.stack([np.sin(xx * (i + 1)), np.cos(yy + i), np.sin(xx + yy)], axis=-1)
        img = (img * 0.4 + 0.5 + rng.normal(0, 0.02, img.shape)).clip(0, 1)
        iio.imwrite(folder / f"img{i}.png", np.round(img * 255).astype(np.uint8))
    gray = (np.sin(xx * 2) * np.cos(yy) * 0.4 + 0.5).clip(0, 1)
    iio.imwrite(folder / "gray16.png", np.round(gray * 65535).astype(np.uint16))
    return folder


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Commands under test set torch's thread count (``train --threads``, the CLI's fit to the
    affinity); restore it so later tests (and the fresh processes they compare with) see the
    count the session started with."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
