"""The report: a loop over the experiments (build) and its training section."""
