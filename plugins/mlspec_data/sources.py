"""Finding a dataset's files and reading them as a stream of Arrow record batches.

Reading is streamed (`iter_batches`, `open_csv`) so memory stays bounded by a batch, not the file.
Every reader error becomes a DataError naming the file and, where the reader says it, the row.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.errors import MlspecError

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 65_536


class DataError(MlspecError):
    """The data breaks the spec, or cannot be read: the message names the file, column and rule."""


def resolve(workdir: Path, paths: str | list[str], address: str, allowed: tuple[Path, ...] = ()) -> list[Path]:
    """Every file a source names (files, directories, globs), sorted; each must stay inside the repo."""
    found: list[Path] = []
    inside = (workdir.resolve(), *(a.resolve() for a in allowed))
    for pattern in [paths] if isinstance(paths, str) else paths:
        if os.path.isabs(pattern) or ".." in Path(pattern).parts:
            raise DataError(f"{address}: source `{pattern}` leaves the spec repo; use a path inside it")
        if any(ch in pattern for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(workdir / pattern), recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise DataError(f"{address}: source glob `{pattern}` matches no file")
        else:
            path = workdir / pattern
            if path.is_dir():
                matches = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
                if not matches:
                    raise DataError(f"{address}: source directory `{pattern}` holds no file")
            elif path.is_file():
                matches = [path]
            else:
                raise DataError(f"{address}: source `{pattern}` does not exist")
        for match in matches:
            real = match.resolve()
            if not any(real == root or root in real.parents for root in inside):
                raise DataError(f"{address}: `{match.relative_to(workdir)}` resolves outside the spec repo ({real})")
            found.append(match)
    return sorted(dict.fromkeys(found))


def batches(path: Path, fmt: str, *, encoding: str = "utf-8", delimiter: str | None = None,
            rel: str = "") -> Iterator[pa.RecordBatch]:
    """The file's rows as record batches; a DataError names the file (and row) when it cannot be read."""
    import pyarrow as pa

    shown = rel or path.name
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # pre_buffer (the default) reads the whole file ahead into memory; a small read buffer
            # keeps memory at a row group's column chunks, whatever the file's size.
            reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            yield from reader.iter_batches(batch_size=BATCH_ROWS, use_threads=False)
        elif fmt == "csv":
            import pyarrow.csv as pacsv

            read = pacsv.ReadOptions(encoding=encoding, block_size=1 << 22)
            parse = pacsv.ParseOptions(delimiter=delimiter or ",")
            with pacsv.open_csv(path, read_options=read, parse_options=parse) as reader:
                yield from reader
        elif fmt == "jsonl":
            import pyarrow.json as pajson

            yield from pajson.read_json(path, read_options=pajson.ReadOptions(block_size=1 << 22)).to_batches(
                BATCH_ROWS)
        else:
            raise DataError(f"{shown}: format `{fmt}` is not supported")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as err:
        raise DataError(f"{shown}: cannot read it as {fmt}: {_reason(err)}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{shown}: not {encoding} text ({err.reason} at byte {err.start}); set "
                        "source.encoding") from None


def count_rows(path: Path, fmt: str, *, encoding: str = "utf-8", delimiter: str | None = None) -> int:
    """Rows in a file: parquet's footer says it; text formats are read (only when the file changed)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception as err:
            raise DataError(f"{path.name}: not a readable parquet file ({_reason(err)})") from None
    return sum(b.num_rows for b in batches(path, fmt, encoding=encoding, delimiter=delimiter))


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return re.sub(r"\s+", " ", text)[:300]


def schema_of(first: Any) -> dict[str, str]:
    return {field.name: str(field.type) for field in first.schema}
