"""The pipeline around the models, in the order data flows through it.

    data/       annotations -> clip sampling -> decoding on Ray Data actors -> batches in a worker
    training/   the plain-PyTorch step, the Ray Train worker loop and driver, checkpoints, the test
    sweeps/     ablation grids as data -> Ray Tune trials -> the results table
    config.py, presets.py   the experiment's configuration      cluster.py   Ray and its resources
    tracking.py             MLflow                              storage.py   folders vs URIs

Imports run one way, down this list: ``sweeps`` uses ``training``, which uses ``data``; the
modules beside them are shared below. ``smallbig`` (the models) knows nothing of any of it.
"""
