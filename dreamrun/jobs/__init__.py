"""Jobs: one config and one run dir in, results and result.json out. One module per job kind."""
