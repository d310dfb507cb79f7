"""Sweeps: the Hydra glue that names and places sweep jobs, and the summary of a finished sweep."""
