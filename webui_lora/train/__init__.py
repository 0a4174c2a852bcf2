"""Training data and training: dataset intake and QA, RVC's preprocessing, f0/feature caches, the index."""
