"""The pure core: tensors in, tensors out. The engine's loop, octaves, objectives, gradient filters,
tiles, the zoom transform and the observer protocol. No files, no Hydra."""
