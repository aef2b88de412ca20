"""Many objects (private; the public faces are `objget.batch` and `objget.distributed`): listings,
key -> path, the journal, the runner; every object through `objget.engine`'s phases."""
