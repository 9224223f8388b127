"""burstkpn: burst, video and single-image denoising with learned per-pixel kernels."""

from burstkpn.errors import InputError

__version__ = "0.1.0"
__all__ = [
    "InputError",
    "__version__",
    "create_model",
    "denoise",
    "load_model",
    "load_pretrained",
    "save_model",
]


def __getattr__(name: str):
    # the model API is imported lazily so that `import burstkpn` stays light
    if name in ("create_model", "load_model", "load_pretrained", "save_model"):
        from burstkpn import models

        return getattr(models, name)
    if name == "denoise":
        from burstkpn.denoising import denoise

        return denoise
    raise AttributeError(f"module 'burstkpn' has no attribute {name!r}")
