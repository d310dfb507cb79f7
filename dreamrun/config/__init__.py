"""The config layer: the typed schema, composing a config, flattening it to dotted keys, run-dir names."""
