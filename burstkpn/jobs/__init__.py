"""File-to-file jobs: what the ``burstkpn`` commands do, as functions of paths and options.

:func:`denoise_path` picks the job from the inputs and the output (a video file, frame files
into a video or a frame folder, a burst into one image, one image through a single-image
model) and the model kind (:mod:`.denoise`); :func:`deblur_path`, :func:`demo` and
:func:`synth_burst` (:mod:`.synthetic`) are the other image jobs. Each checks its inputs and its
output before any heavy work (:mod:`.outputs`: outputs are written atomically, never over an
input and, without ``force``, never over an existing file), raises
:class:`~burstkpn.errors.InputError` with a one-line message on bad input, and returns what it
did for the caller to report; none of them prints.
"""

from burstkpn.jobs.denoise import (
    LINEAR_MODEL,
    REAL_MODEL,
    JobResult,
    check_backend,
    deblur_path,
    default_denoise_model,
    denoise_path,
)
from burstkpn.jobs.outputs import (
    check_new_file,
    check_output,
    check_sequence_target,
    refuse_linear_raw,
    refuse_overwriting_input,
    write_ablation_report,
    write_json,
    write_new,
)
from burstkpn.jobs.synthetic import DEMO_NAME, DemoResult, demo, synth_burst

__all__ = [
    "DEMO_NAME",
    "LINEAR_MODEL",
    "REAL_MODEL",
    "DemoResult",
    "JobResult",
    "check_backend",
    "check_new_file",
    "check_output",
    "check_sequence_target",
    "deblur_path",
    "default_denoise_model",
    "demo",
    "denoise_path",
    "refuse_linear_raw",
    "refuse_overwriting_input",
    "synth_burst",
    "write_ablation_report",
    "write_json",
    "write_new",
]
