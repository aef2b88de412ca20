"""Many objects (private; the public faces are `objget.batch` and `objget.distributed`): listings,
key -> path, the journal, the runner, Ray tasks; every object through `objget.engine`'s phases."""
