"""Choosing a renderer: local processes (`render/pool.py`) or a Dask cluster
(`render/cluster.py`)."""

from __future__ import annotations

import os

from invoicing.render.pool import make_renderer
from invoicing.render.progress import RenderFn


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def choose_renderer(workers: int, cluster: str | None, label: str = "rendering",
                    draft: bool = False, cluster_timeout: float | None = None) -> RenderFn:
    """The local pool of `workers` processes, or the Dask cluster at `cluster` if given
    (`cluster_timeout`: seconds without a result before the run stops, exit 12).

    Dask is imported only for a cluster, so the base install never needs it.
    """
    if cluster:
        from invoicing.render.cluster import make_cluster_renderer

        return make_cluster_renderer(cluster, label=label, draft=draft, timeout=cluster_timeout)
    return make_renderer(workers, label=label, draft=draft)
