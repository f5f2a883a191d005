"""Training and testing: ``step`` (plain PyTorch), ``worker`` (inside Ray Train), ``driver`` (``fit``),
``reporting`` (MLflow from the controller), ``checkpoints``, ``metrics`` and ``testing`` (multi-view test)."""
