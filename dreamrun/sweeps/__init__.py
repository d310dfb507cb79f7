"""Sweeps: the Hydra glue that names and places sweep jobs, and the summary of a finished sweep.

The package imports none of its modules: `python -m dreamrun.sweeps.summary` runs summary as __main__
after importing this package, and a copy imported here first would make runpy warn and hold it twice.
"""
