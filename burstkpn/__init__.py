"""burstkpn: burst, video and single-image denoising with learned per-pixel kernels."""

from burstkpn.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
