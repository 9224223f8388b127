from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from burstkpn.errors import InputError, MissingInputError
from burstkpn.models import create_model, load_model, load_pretrained, read_metadata, save_model

SCRIPT = """
import sys, torch
from safetensors.torch import load_file, save_file
from burstkpn.models import load_model
model = load_model(sys.argv[1])
inp = load_file(sys.argv[2])
with torch.no_grad():
    out = model(inp["burst"], inp["nmap"]).image
save_file({"out": out.contiguous()}, sys.argv[3])
"""


@pytest.mark.parametrize("name,kw", [("ame_kpn", {}), ("mkpn", {}), ("kpn", {"kernel_size": 7})])
def test_checkpoint_round_trip_in_fresh_process(tmp_path, name, kw):
    from safetensors.torch import load_file

    torch.manual_seed(3)
    model = create_model(name, **kw).eval()
    with torch.no_grad():  # move weights off their init so the test means something
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ckpt = save_model(model, tmp_path / "m.safetensors", note="test", steps=3)
    burst = torch.rand(1, 8, 2, 24, 40)
    nmap = torch.full((1, 2, 24, 40), 0.03)
    save_file({"burst": burst, "nmap": nmap}, tmp_path / "in.safetensors")
    with torch.no_grad():
        expected = model(burst, nmap).image
    subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(ckpt),
            str(tmp_path / "in.safetensors"),
            str(tmp_path / "out.safetensors"),
        ],
        check=True,
    )
    assert torch.equal(load_file(tmp_path / "out.safetensors")["out"], expected)
    meta = read_metadata(ckpt)
    assert meta["name"] == name and meta["card"] == {"note": "test", "steps": 3}
    assert load_model(ckpt).config == model.config


def test_invalid_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(MissingInputError, match="no such checkpoint"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(InputError, match="not a safetensors checkpoint"):
        load_model(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, plain)
    with pytest.raises(InputError, match="not a burstkpn checkpoint"):
        load_model(plain)
    pickle_file = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, pickle_file)
    with pytest.raises(InputError, match="not a safetensors checkpoint"):
        load_model(pickle_file)


def test_mismatched_weights_rejected(tmp_path):
    ckpt = save_model(create_model("kpn"), tmp_path / "k.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
    state = load_file(ckpt)
    state.pop(next(iter(state)))
    save_file(state, tmp_path / "bad.safetensors", metadata=meta)
    with pytest.raises(InputError, match="does not fit"):
        load_model(tmp_path / "bad.safetensors")


def test_load_pretrained_unknown_name():
    with pytest.raises(InputError, match="no shipped weights"):
        load_pretrained("does_not_exist")
