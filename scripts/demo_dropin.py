"""The oss2 drop-in: the same call as oss2.resumable_download, one import changed.

python scripts/demo_dropin.py ENDPOINT REGION AK SK BUCKET KEY FILENAME STORE_ROOT
"""

from __future__ import annotations

import sys

import oss2

from objget import resumable_download  # was: from oss2 import resumable_download

endpoint, region, ak, sk, bucket_name, key, filename, store_root = sys.argv[1:9]
bucket = oss2.Bucket(oss2.AuthV4(ak, sk), endpoint, bucket_name, region=region)
seen: list[tuple[int, int | None]] = []
resumable_download(
    bucket,
    key,
    filename,
    store=oss2.ResumableDownloadStore(root=store_root),
    num_threads=4,
    progress_callback=lambda consumed, total: seen.append((consumed, total)),
)
print(f"resumable_download done: {len(seen)} progress calls, last {seen[-1]}")
