"""The engine's face to many objects: what the batch and Ray may use besides the Downloader.

A batch schedules many downloads; everything about one object, the disk or HTTP is the
engine's. The batch modules import the engine only through `_downloader.__all__` (the
Downloader) and the names below (`tests/unit/test_import_contract.py` holds them to that):

- the single-request mode (`_single`): a small object in one GET, no checkpoint, the same
  lock, answer validation, checks and inode-checked commit as the ranged mode; a worker's run
  of them through one `SmallGroup` (`_small_group`: DEST's lock file is the temp file, each
  directory fsynced once, one buffer);
- the disk layer: directories walked without following symlinks (`_dirs`), a destination's
  lock and side-file names (`_checkpoint`), a file's identity, a directory fsync (`_fileio`),
  the skip rule of re-runs (`_sync.up_to_date`);
- the one retry loop over a listing (`_attempts.list_with_retry`) and the rate limit one
  batch shares among all its objects (`_throttle.RateLimiter`);
- the stream controller (`_concurrency`), which also sizes how many small objects a batch
  fetches at once (objects/s measured in place of bytes/s).
"""

from __future__ import annotations

from ._attempts import list_with_retry
from ._checkpoint import DestLock, Paths
from ._concurrency import ControllerSettings, StreamController
from ._dirs import ParentMaker, drop_stale_lock
from ._fileio import file_state, fsync_dir, remove_quietly
from ._single import SMALL, NotSmall
from ._small_group import SmallGroup
from ._sync import file_sha256, up_to_date
from ._throttle import RateLimiter

__all__ = [
    "SMALL",
    "ControllerSettings",
    "DestLock",
    "NotSmall",
    "ParentMaker",
    "Paths",
    "RateLimiter",
    "SmallGroup",
    "StreamController",
    "drop_stale_lock",
    "file_sha256",
    "file_state",
    "fsync_dir",
    "list_with_retry",
    "remove_quietly",
    "up_to_date",
]
