"""Degradations in linear light: the noise model (noise) and its estimation from images and
bursts (estimate), burst synthesis with camera motion (synth), the camera pipeline (camera),
clips with synthetic motion (video) and motion blur (blur). Imports only
:mod:`burstkpn.data.io` of the data layer."""
