"""RVC's feature retrieval: blend each content frame with its nearest neighbours from the training set.

RVC stores an IVF-Flat faiss index of the training features. For each frame the 8 nearest vectors are
averaged with weights proportional to 1/d^4 (faiss returns squared L2 distances d^2, and RVC squares
their inverses), then mixed with the frame by ``index_rate``. RVC divides by zero on an exact match;
here an exact match takes all the weight instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lora_core.atomic import write_atomic

from ..errors import UserError

NEIGHBOURS = 8


class IndexFileError(UserError):
    """An index file that is missing, unreadable, or made for other features."""


class FeatureIndex:
    """A loaded faiss index plus the vectors it holds (RVC reconstructs them all once)."""

    def __init__(self, index, vectors: np.ndarray, path: Path):
        self.index = index
        self.vectors = vectors
        self.path = path

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @staticmethod
    def resolve_path(path) -> Path:
        """The file to read: RVC swaps a 'trained' index (no vectors) for its 'added' sibling."""
        path = Path(path)
        if "trained" in path.name:
            added = path.with_name(path.name.replace("trained", "added"))
            if not added.is_file():
                raise IndexFileError(f"{path}: a 'trained' index holds no vectors; pick the 'added_...' index "
                                     "from the same training run")
            path = added
        if not path.is_file():
            raise IndexFileError(f"{path}: no such index file")
        return path

    @classmethod
    def load(cls, path) -> "FeatureIndex":
        import faiss

        path = cls.resolve_path(path)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise IndexFileError(f"{path}: not a faiss index file ({str(err).splitlines()[0]})") from err
        if index.ntotal == 0:
            raise IndexFileError(f"{path}: the index holds no vectors")
        return cls(index, index.reconstruct_n(0, index.ntotal), path)

    def check_dim(self, feature_dim: int) -> None:
        if self.dim != feature_dim:
            raise IndexFileError(f"{self.path}: index holds {self.dim}-dim features but the model uses "
                                 f"{feature_dim}-dim ones ({'v1' if feature_dim == 256 else 'v2'}); pick the "
                                 "index trained with this model")

    def retrieve(self, feats: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
        """For frames [T, D] float32, the inverse-distance-weighted mean of their k nearest vectors."""
        distances, ids = self.index.search(np.ascontiguousarray(feats, dtype=np.float32), k)
        found = ids >= 0
        exact = (distances <= 0) & found
        inverse = np.where(found & ~exact, 1.0 / np.maximum(distances, 1e-30), 0.0) ** 2
        weights = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), inverse)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
        neighbours = self.vectors[np.where(found, ids, 0)]
        return np.einsum("tk,tkd->td", weights, neighbours).astype(np.float32)


KMEANS_ABOVE = 200_000  # vectors; RVC replaces a larger set by k-means centres
KMEANS_CENTRES = 10_000


def index_lists(count: int) -> int:
    """RVC's IVF size for ``count`` vectors: min(16 sqrt(N), N / 39), at least 1."""
    return max(1, min(int(16 * np.sqrt(count)), count // 39))


def training_vectors(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """RVC's index input: the rows shuffled, and above 200k rows MiniBatchKMeans' 10k centres
    (batch 256 per CPU, random init), which keeps index size and search time bounded."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    features = features[np.random.default_rng(seed).permutation(len(features))]
    if len(features) > KMEANS_ABOVE:
        import os

        from sklearn.cluster import MiniBatchKMeans

        kmeans = MiniBatchKMeans(n_clusters=KMEANS_CENTRES, batch_size=256 * (os.cpu_count() or 1),
                                 init="random", compute_labels=False, random_state=seed, n_init=1)
        features = np.ascontiguousarray(kmeans.fit(features).cluster_centers_, dtype=np.float32)
    return features


def build_index(features: np.ndarray, path) -> FeatureIndex:
    """Train and write an index the way RVC does: IVF with ``index_lists(N)`` lists, flat L2 storage,
    nprobe 1, vectors added in batches of 8192. ``features`` is [N, D] float32 (see training_vectors)."""
    import faiss

    features = np.ascontiguousarray(features, dtype=np.float32)
    count, dim = features.shape
    index = faiss.index_factory(dim, f"IVF{index_lists(count)},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(features)
    for start in range(0, count, 8192):
        index.add(features[start:start + 8192])
    path = Path(path)
    write_atomic(path, faiss.serialize_index(index).tobytes())
    return FeatureIndex(index, index.reconstruct_n(0, index.ntotal), path)
