"""Everything distributed: Ray Data decoding, Ray Train loops, Ray Tune grids, MLflow tracking."""
