"""The writing half of the OSS test server's handler: PutObject, DeleteObject, multipart
upload and bucket creation. Request bodies stream through to S3 with their CRC-64 computed on
the way, as OSS computes it."""

from __future__ import annotations

import contextlib
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from objget.integrity.crc64 import crc64, crc64_combine

from ._oss_wire import OssFault, Target
from ._s3_link import CHUNK, S3Meta

PASS_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "cache-control",
    "expires",
    "content-language",
)


def etag_out(s3_etag: str) -> str:
    """OSS spells ETags in upper-case hex, quoted."""
    return '"' + s3_etag.strip('"').upper() + '"'


def result_xml(root: str, **fields: str) -> bytes:
    """An OSS result document: `<Root><Field>value</Field>...</Root>` (no namespace, as OSS)."""
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>\n'.encode()


class WriteOps:
    """Mixed into `OssHandler` (which provides `oss`, `headers`, `rfile`, `_send`, `_s3_fault`)."""

    oss: Any
    headers: Any
    rfile: Any
    body_read: bool

    def _body(self) -> Iterator[bytes]:
        """The request body in chunks: Content-Length or chunked transfer coding."""
        self.body_read = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16):
                yield self.rfile.read(size)
                self.rfile.readline(10)
            while self.rfile.readline(1000).strip():
                pass
            return
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, CHUNK))
            if not chunk:
                raise ConnectionError("request body ended early")
            left -= len(chunk)
            yield chunk

    def _forward_headers(self, t: Target) -> dict[str, str]:
        out = {k: v for k in (*PASS_HEADERS, "content-md5") if (v := t.headers.get(k))}
        out.update(
            {"x-amz-meta-" + k[11:]: v for k, v in t.headers.items() if k.startswith("x-oss-meta-")}
        )
        return out

    def _put(self, t: Target, *, part: tuple[str, int] | None) -> None:
        with self.oss.link.send("HEAD", t.bucket) as b:
            if b.status != 200:
                raise OssFault("NoSuchBucket", fields={"BucketName": t.bucket})
        crc = 0

        def with_crc(source: Iterator[bytes]) -> Iterator[bytes]:
            nonlocal crc
            for chunk in source:
                crc = crc64(chunk, crc)
                yield chunk

        params = {"partNumber": str(part[1]), "uploadId": part[0]} if part else None
        headers = {} if part else self._forward_headers(t)
        with contextlib.ExitStack() as stack:
            if t.headers.get("transfer-encoding", "").lower() == "chunked":
                spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=8 * CHUNK))
                for chunk in self._body():  # S3 wants a length: spool chunked bodies first
                    spool.write(chunk)
                length = spool.tell()
                spool.seek(0)
                source: Iterator[bytes] = iter(lambda: spool.read(CHUNK), b"")
            else:
                length = int(t.headers.get("content-length") or 0)
                source = self._body()
            r = stack.enter_context(
                self.oss.link.send(
                    "PUT", t.bucket, t.key, params=params, headers=headers,
                    body=with_crc(source), length=length,
                )
            )  # fmt: skip
            if r.status != 200:
                raise self._s3_fault(r, t)
            etag = r.headers.get("etag", '""')
            version = r.headers.get("x-amz-version-id")
        out = {"ETag": etag_out(etag), "x-oss-hash-crc64ecma": str(crc)}
        if part:
            self.oss.record_part(part[0], part[1], crc, length)
        else:
            self.oss.record_crc(t.bucket, t.key, S3Meta(length, etag, "", version, {}), crc)
            if version and version != "null":
                out["x-oss-version-id"] = version
        self._send(200, out)

    def _delete(self, t: Target) -> None:
        params = {k: v for k, v in t.params.items() if k in ("versionId", "uploadId")}
        with self.oss.link.send("DELETE", t.bucket, t.key, params=params or None) as r:
            if r.status not in (200, 204):
                raise self._s3_fault(r, t)
        self._send(204, {})

    def _initiate(self, t: Target) -> None:
        list(self._body())
        with self.oss.link.send(
            "POST", t.bucket, t.key, params={"uploads": ""}, headers=self._forward_headers(t)
        ) as r:
            if r.status != 200:
                raise self._s3_fault(r, t)
            upload_id = ET.fromstring(r.read()).findtext("{*}UploadId") or ""
        xml = result_xml(
            "InitiateMultipartUploadResult", Bucket=t.bucket, Key=t.key, UploadId=upload_id
        )
        self._send(200, {"Content-Type": "application/xml"}, xml)

    def _complete(self, t: Target) -> None:
        upload_id = t.params["uploadId"]
        raw = b"".join(self._body())
        try:
            parts = [
                (int(p.findtext("PartNumber") or 0), (p.findtext("ETag") or "").strip('"').lower())
                for p in ET.fromstring(raw).iter("Part")
            ]
        except (ET.ParseError, ValueError) as exc:
            raise OssFault("MalformedXML") from exc
        s3_xml = (
            "<CompleteMultipartUpload>"
            + "".join(
                f'<Part><PartNumber>{n}</PartNumber><ETag>"{e}"</ETag></Part>' for n, e in parts
            )
            + "</CompleteMultipartUpload>"
        )
        with self.oss.link.send(
            "POST", t.bucket, t.key, params={"uploadId": upload_id}, body=s3_xml.encode()
        ) as r:
            if r.status != 200:
                raise self._s3_fault(r, t)
            etag = ET.fromstring(r.read()).findtext("{*}ETag") or '""'
            version = r.headers.get("x-amz-version-id")
        known = self.oss.parts_of(upload_id, forget=True)
        out = {"Content-Type": "application/xml"}
        if all(n in known for n, _ in parts):
            crc = 0
            for n, _ in parts:
                crc = crc64_combine(crc, known[n][0], known[n][1])
            self.oss.record_crc(t.bucket, t.key, S3Meta(0, etag, "", version, {}), crc)
            out["x-oss-hash-crc64ecma"] = str(crc)
        if version and version != "null":
            out["x-oss-version-id"] = version
        location = f"http://{self.headers.get('Host', '')}/{t.bucket}/{t.key}"
        xml = result_xml(
            "CompleteMultipartUploadResult",
            Location=location, Bucket=t.bucket, Key=t.key, ETag=etag_out(etag),
        )  # fmt: skip
        self._send(200, out, xml)

    def _create_bucket(self, t: Target) -> None:
        list(self._body())
        with self.oss.link.send("PUT", t.bucket) as r:
            if r.status != 200:
                raise self._s3_fault(r, t)
        self._send(200, {"Location": "/" + t.bucket})

    def _list_parts(self, t: Target) -> None:
        keep = ("uploadId", "max-parts", "part-number-marker")
        params = {k: v for k, v in t.params.items() if k in keep}
        with self.oss.link.send("GET", t.bucket, t.key, params=params) as r:
            if r.status != 200:
                raise self._s3_fault(r, t)
            root = ET.fromstring(r.read())
        known = self.oss.parts_of(t.params["uploadId"])
        parts = []
        for p in root.iterfind("{*}Part"):
            number = p.findtext("{*}PartNumber") or "0"
            fields = {
                "PartNumber": number,
                "LastModified": p.findtext("{*}LastModified") or "",
                "ETag": etag_out(p.findtext("{*}ETag") or ""),
                "Size": p.findtext("{*}Size") or "0",
            }
            if int(number) in known:
                fields["HashCrc64ecma"] = str(known[int(number)][0])
            parts.append(
                "<Part>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items()) + "</Part>"
            )
        numbers = [p.findtext("{*}PartNumber") or "0" for p in root.iterfind("{*}Part")]
        head = result_xml(
            "ListPartsResult",
            Bucket=t.bucket,
            Key=t.key,
            UploadId=t.params["uploadId"],
            PartNumberMarker=t.params.get("part-number-marker", "0"),
            NextPartNumberMarker=root.findtext("{*}NextPartNumberMarker")
            or (numbers[-1] if numbers else "0"),
            MaxParts=root.findtext("{*}MaxParts") or "1000",
            IsTruncated=root.findtext("{*}IsTruncated") or "false",
        )
        xml = head.replace(b"</ListPartsResult>", "".join(parts).encode() + b"</ListPartsResult>")
        self._send(200, {"Content-Type": "application/xml"}, xml)
