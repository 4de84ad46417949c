"""Empirical probes: deep random networks built by torch's own init functions, measured layer by
layer."""
