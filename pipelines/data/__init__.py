"""Videos to clips: annotation files, the sampling rules, decoding, and the Ray Dataset that runs them.

``annotations`` / ``formats`` read the lists; ``sampling`` / ``crops`` decide which frames and
pixels make a clip; ``decoding`` reads them (skipping bad files, counted in ``health``);
``dataset`` runs that on a pool of Ray actors; ``batches`` turns the clips into model input
in the training worker. ``synthetic`` is the built-in benchmark, ``folders`` finds a dataset.
"""
