"""The fixed benchmark test sets, written to disk with a manifest and read back checked: seeded
synthetic bursts (burst), video windows (video) and motion-blurred photos (deblur), all on one
folder format and reader base class (manifest)."""
