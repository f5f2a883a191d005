"""Ablation sweeps: ``grids`` (the paper's tables as data), ``sweep`` (Ray Tune over Ray Train), ``results``."""
