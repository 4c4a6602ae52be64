"""forgeml on dask.distributed: forests fitted across a cluster's workers and lazy, partition-wise
prediction on dask arrays and dataframes (``pip install 'forgeml[dask]'``).

    from distributed import Client, LocalCluster
    import forgeml.dask as fd
    client = Client(LocalCluster(n_workers=2))
    clf = fd.RandomForestClassifier(100, mode="data").fit(X_dask, y_dask)
    labels = clf.predict(X_dask).compute()       # or fd.predict(keras_model, X_dask)
"""

from __future__ import annotations

try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("forgeml.dask needs dask and distributed: pip install 'forgeml[dask]'") from e

from ._forest import RandomForestClassifier, RandomForestRegressor, get_client
from ._predict import predict, predict_proba

__all__ = ["RandomForestClassifier", "RandomForestRegressor", "predict", "predict_proba", "get_client"]
