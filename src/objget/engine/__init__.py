"""One download: the engine (private; the public face is `objget.Downloader`).

The Downloader and its phases (prepare -> fetch -> finish), the single-request mode, the workers
and scheduler, the durable checkpoint and live record, verification and commit, the stream to
stdout, and the pure decisions they take (plan, stream count). Batch and Ray use only the
names in the `__all__` of `_downloader`, `_phases`, `_windows` and `_engine_face`.
"""

__all__: list[str] = []
