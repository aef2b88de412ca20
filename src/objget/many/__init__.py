"""Many objects: listings and manifests, key -> path, the journal, the local runner and the
Ray driver and tasks (private; the public faces are `objget.batch` and `objget.distributed`).
Every object goes through the engine's phases (`objget.engine`).
"""

__all__: list[str] = []
