"""The default method lists of the bench commands, in a module without torch so that the
command-line parser (``burstkpn --help``) can show them; the bench modules use the same lists."""

# bench quality: the classical methods (the anchors learned methods are compared against), then
# the shipped burst models
CLASSICAL_ANCHORS = (
    "reference",
    "average",
    "oracle_average",
    "nlm",
    "nlm_multi",
    "bm3d",
    "align_bm3d",
)
DEFAULT_BENCH_METHODS = (*CLASSICAL_ANCHORS, "kpn", "mkpn", "ame_kpn")
# bench video / motion
DEFAULT_VIDEO_METHODS = ("reference", "average", "deform2d", "kpn", "deform3d")
DEFAULT_MOTION_METHODS = ("reference", "average", "kpn", "deform2d", "deform3d")
# bench real: its classical methods (the anchors of its standing), the defaults for bursts
# without ground truth and for real noisy / clean pairs
CLASSICAL_REAL = ("reference", "align_mean", "average", "nlm", "nlm_multi", "bm3d", "align_bm3d")
DEFAULT_REAL_METHODS = (
    "reference",
    "align_mean",
    "nlm",
    "align_bm3d",
    "kpn",
    "ame_kpn",
    "ame_kpn_real",
)
DEFAULT_PAIR_METHODS = (
    "reference",
    "nlm",
    "bm3d",
    "dcn_lka_denoise",
    "deform2d",
    "kpn",
    "ame_kpn",
    "ame_kpn_real",
)
