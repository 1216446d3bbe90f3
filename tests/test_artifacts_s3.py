"""The artifact store on S3-compatible object storage, against a real server on 127.0.0.1 (moto's
ThreadedMotoServer): content-addressed, uploaded once, every read checked against its digest, and a
Dataset applied end to end with its splits in a bucket."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlspec.artifacts import ArtifactStore
from mlspec.errors import ArtifactError
from tests.cli import Result

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

BUCKET = "mlspec-artifacts"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # a fresh view of the bucket for each test
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def key_of(uri: str) -> str:
    return uri.removeprefix(f"s3://{BUCKET}/")


def test_an_artifact_is_stored_once_by_digest_and_read_back_verified(s3: object, tmp_path: Path) -> None:
    store = ArtifactStore(f"s3://{BUCKET}/team", tmp_path)
    data = tmp_path / "split.parquet"
    data.write_bytes(b"rows" * 1000)
    digest = hashlib.sha256(b"rows" * 1000).hexdigest()
    stored = store.put(data, ".parquet")
    assert stored.uri == f"s3://{BUCKET}/team/sha256/{digest[:2]}/{digest}.parquet" and stored.digest == digest
    assert not data.exists()  # handed over to the store
    again = tmp_path / "again.parquet"
    again.write_bytes(b"rows" * 1000)
    assert store.put(again, ".parquet") == stored  # the same bytes: nothing uploaded twice
    assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 1  # type: ignore[attr-defined]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert store.local(stored.to_json(), scratch).read_bytes() == b"rows" * 1000
    assert store.missing({"split": stored.to_json(), "gone": {"uri": stored.uri + ".nope"}}) == ["gone"]


@pytest.mark.parametrize("damage", [b"rows", b"other bytes entirely"], ids=["truncated", "altered"])
def test_a_damaged_object_is_caught_on_read(s3: object, tmp_path: Path, damage: bytes) -> None:
    store = ArtifactStore(f"s3://{BUCKET}/team", tmp_path)
    data = tmp_path / "weights.bin"
    data.write_bytes(b"w" * 4096)
    stored = store.put(data, ".bin")
    s3.put_object(Bucket=BUCKET, Key=key_of(stored.uri), Body=damage)  # type: ignore[attr-defined]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(ArtifactError, match="does not hold the bytes its name says"):
        store.local(stored.to_json(), scratch)


DATASET = """\
apiVersion: mlspec/v1
kind: Dataset
metadata: {name: reviews}
spec:
  source: {path: data/reviews.csv, format: csv}
  schema: {columns: {text: {type: string}, label: {type: category}}}
  splits: {ratios: {train: 0.5, test: 0.5}, seed: 1}
"""


def test_a_dataset_applies_to_a_bucket_and_a_deleted_split_is_drift(
    s3: object, project: Callable[..., Path], mlspec: Callable[..., Result]
) -> None:
    rows = "".join(f"review {i},{'positive' if i % 2 else 'negative'}\n" for i in range(40))
    root = project({"specs/reviews.yaml": DATASET, "data/reviews.csv": "text,label\n" + rows},
                   config=f"specs: ['specs/**/*.yaml']\nartifacts: {{url: 's3://{BUCKET}/specs-repo'}}\n")
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    outputs = mlspec(root, "state", "show", "Dataset/reviews", "--format", "json").json()["outputs"]
    assert all(split["uri"].startswith(f"s3://{BUCKET}/specs-repo/sha256/") for split in outputs["splits"].values())
    assert not (root / ".mlspec" / "artifacts").exists()
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    s3.delete_object(Bucket=BUCKET, Key=key_of(outputs["splits"]["train"]["uri"]))  # type: ignore[attr-defined]
    drifted = mlspec(root, "plan")
    assert "split `train`" in drifted.out and "deleted from the store" in drifted.out, drifted.output
