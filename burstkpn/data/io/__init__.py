"""File I/O: atomic writes and output checks (files), images and the sRGB transfer pair
(images), camera raw files (raw), and the folders of training data on disk: degraded / clean
pairs (pairs) and frame folders of video clips (clips). Imports flow one way:
files, raw <- images <- pairs, clips."""
