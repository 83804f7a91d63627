"""A real S3 endpoint for tests: moto's threaded server on a random loopback port.

Usage (typically from a session-scoped fixture)::

    with moto_s3_server() as s3:
        bucket = s3.create_bucket()
        storage = create_storage(f"s3://{bucket}/media", s3=s3.options(), data_dir=tmp)

The server speaks the S3 HTTP API, so code under test talks to it over the network exactly
as it would to AWS/MinIO (signing, multipart uploads, presigned URLs all included).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import boto3  # type: ignore[import-untyped]
from moto.server import ThreadedMotoServer

from amphora.kit.storage import S3Options

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # moto accepts any credentials


@dataclass(frozen=True)
class MotoS3:
    """Handle on a running moto S3 server, with a boto3 client for setup and inspection."""

    endpoint_url: str
    client: Any  # botocore S3 client (untyped)
    region: str = REGION
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY

    def options(self, **overrides: Any) -> S3Options:
        """``S3Options`` pointing at this server (``allow_http`` on); fields can be overridden."""
        base = S3Options(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            allow_http=True,
        )
        return replace(base, **overrides)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique one by default) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` (full keys, including any storage prefix)."""
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def list_multipart_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads that were started but neither completed nor aborted."""
        uploads = self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(upload["Key"] for upload in uploads)

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.head_object(Bucket=bucket, Key=key)
        return result


@contextmanager
def moto_s3_server() -> Iterator[MotoS3]:
    """Start moto's S3 server on ``127.0.0.1`` (random free port); stop it on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        yield MotoS3(endpoint_url=endpoint, client=client)
    finally:
        server.stop()
