"""Degradations in linear light: the noise model (noise), noise-line fits (noise_fit) and the
noise estimation from images and bursts (estimate), burst synthesis with camera motion (synth),
the camera pipeline (camera, with the Bayer mosaic in bayer), clips with synthetic motion
(video) and motion blur (blur). Imports only :mod:`burstkpn.data.io` of the data layer."""
