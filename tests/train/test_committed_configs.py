"""Every config under ``training/configs`` is one ``burstkpn train --config`` accepts: known
options only, valid values (a typo in a config that is run next session fails here, not hours
into a run)."""

from pathlib import Path

import pytest
import yaml

from burstkpn.train.config import TrainConfig

CONFIGS = sorted((Path(__file__).parents[2] / "training" / "configs").rglob("*.yaml"))


@pytest.mark.skipif(not CONFIGS, reason="no training/configs in this checkout")
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_committed_config_parses_and_validates(path):
    cfg = TrainConfig.from_dict(yaml.safe_load(path.read_text()) or {})
    cfg.validate()
    assert cfg.model
