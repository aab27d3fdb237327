"""The S3 protocol server fixture speaks real S3 over HTTP to both clients exports use."""

from __future__ import annotations

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs


def test_boto3_and_pyarrow_round_trip(s3_endpoint: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="fixture-check")
    s3.put_object(Bucket="fixture-check", Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket="fixture-check", Key="a/b.txt")["Body"].read() == b"hello"

    arrow_s3 = fs.S3FileSystem(
        endpoint_override=s3_endpoint.removeprefix("http://"),
        scheme="http",
        access_key="test",
        secret_key="test",
        region="us-east-1",
    )
    pq.write_table(pa.table({"n": [1, 2, 3]}), "fixture-check/t.parquet", filesystem=arrow_s3)
    assert pq.read_table("fixture-check/t.parquet", filesystem=arrow_s3)["n"].to_pylist() == [
        1,
        2,
        3,
    ]
    listed = s3.list_objects_v2(Bucket="fixture-check")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["a/b.txt", "t.parquet"]
