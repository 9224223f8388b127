"""``runtime.tune_allocator``: the values reach glibc's ``mallopt(int, int)`` unmasked, and
``burstkpn denoise`` applies its own threshold."""

import ctypes
import sys
from types import SimpleNamespace

import pytest

from burstkpn import runtime


class _FakeMallopt:
    """Records ``(param, value)`` as glibc would see them: a plain Python int passed without
    ``argtypes`` is masked to its low 32 bits by ctypes."""

    def __init__(self):
        self.calls = []
        self.argtypes = None

    def __call__(self, param, value):
        if self.argtypes is None:
            value = ctypes.c_int(value).value  # ctypes keeps the low 32 bits
        elif not -(2**31) <= value < 2**31:
            raise ctypes.ArgumentError("int too long to convert")
        self.calls.append((param, value))
        return 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_thresholds_are_not_masked(monkeypatch):
    fake = SimpleNamespace(mallopt=_FakeMallopt())
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: fake)
    monkeypatch.setattr(runtime, "_TUNED", None)
    assert runtime.tune_allocator()
    values = dict(fake.mallopt.calls)
    # M_TRIM_THRESHOLD (-1) 0 would hand every freed top chunk back to the OS (a 2**34
    # masked to 32 bits is 0); M_MMAP_THRESHOLD (-3) keeps blocks up to 2 GiB in the heap
    assert values[-1] >= 2**30
    assert values[-3] >= 2**30


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_threshold_per_job(monkeypatch):
    fake = SimpleNamespace(mallopt=_FakeMallopt())
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: fake)
    monkeypatch.setattr(runtime, "_TUNED", None)
    assert runtime.tune_allocator(runtime.DENOISE_MMAP_THRESHOLD)
    assert dict(fake.mallopt.calls) == {-3: 256 * 2**20, -1: 2**31 - 1}
    fake.mallopt.calls.clear()
    assert runtime.tune_allocator(runtime.DENOISE_MMAP_THRESHOLD)  # applied already
    assert fake.mallopt.calls == []
    assert runtime.tune_allocator()  # another job's threshold is applied again
    assert dict(fake.mallopt.calls)[-3] == 2**31 - 1
    with pytest.raises(ValueError, match="mmap_threshold"):
        runtime.tune_allocator(2**31)


def test_denoise_command_tunes_the_allocator(monkeypatch, tmp_path):
    """``burstkpn denoise`` sets the denoising threshold before it reads the frames."""
    from burstkpn.cli import main

    seen = []

    def fake_tune(threshold=runtime.TRAIN_MMAP_THRESHOLD):
        seen.append(threshold)
        return True

    def fake_job(*args, **kwargs):
        raise SystemExit(0)  # stop before any work: only the order matters here

    monkeypatch.setattr(runtime, "tune_allocator", fake_tune)
    monkeypatch.setattr("burstkpn.jobs.denoise_path", fake_job)
    with pytest.raises(SystemExit):
        main(["denoise", str(tmp_path), "-o", str(tmp_path / "out.png")])
    assert seen == [runtime.DENOISE_MMAP_THRESHOLD]
