"""``runtime.tune_allocator``: the values reach glibc's ``mallopt(int, int)`` unmasked."""

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
    monkeypatch.setattr(runtime, "_TUNED", False)
    assert runtime.tune_allocator()
    values = dict(fake.mallopt.calls)
    # M_TRIM_THRESHOLD (-1) 0 would hand every freed top chunk back to the OS (a 2**34
    # masked to 32 bits is 0); M_MMAP_THRESHOLD (-3) keeps blocks up to 2 GiB in the heap
    assert values[-1] >= 2**30
    assert values[-3] >= 2**30
