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

from mlspec.sdk import StepFailed
from mlspec.sdk.paths import leaves

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 65_536


class DataError(StepFailed):
    """The data breaks the spec, or cannot be read: the message names the file, column and rule."""


def resolve(workdir: Path, paths: str | list[str], address: str, allowed: tuple[Path, ...] = ()) -> list[Path]:
    """Every file a source names (files, directories, globs), sorted; each must stay inside the repo."""
    found: list[Path] = []
    inside = (workdir.resolve(), *(a.resolve() for a in allowed))
    for pattern in [paths] if isinstance(paths, str) else paths:
        if leaves(workdir, pattern, [str(a) for a in allowed]):
            raise DataError(f"{address}: source `{pattern}` leaves the spec repo; use a path inside it, or list its "
                            "directory in mlspec.yaml's `paths.outside`")
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
                raise DataError(f"{address}: `{repo_path(match, workdir)}` resolves outside the spec repo ({real})")
            found.append(match)
    return sorted(dict.fromkeys(found))


def repo_path(path: Path, workdir: Path) -> str:
    """A source file as state and messages name it: relative to the repo, or absolute when it lies in a
    directory mlspec.yaml's `paths.outside` allows."""
    try:
        return path.relative_to(workdir).as_posix()
    except ValueError:
        return os.path.normpath(path)


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

            _check_width(path, shown, delimiter or ",")
            read = pacsv.ReadOptions(encoding=encoding, block_size=1 << 22)
            parse = pacsv.ParseOptions(delimiter=delimiter or ",")
            convert = pacsv.ConvertOptions(strings_can_be_null=True)  # an empty cell is a missing value
            with pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
                for batch in reader:
                    yield _text_only(batch, shown, encoding)
        elif fmt == "jsonl":
            import pyarrow.json as pajson

            table = pajson.read_json(path, read_options=pajson.ReadOptions(block_size=1 << 22))
            for batch in table.to_batches(BATCH_ROWS):
                yield _text_only(batch, shown, encoding)
        else:
            raise DataError(f"{shown}: format `{fmt}` is not supported")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as err:
        raise DataError(f"{shown}: cannot read it as {fmt}: {_reason(err)}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{shown}: not {encoding} text ({err.reason} at byte {err.start}); set "
                        "source.encoding") from None


MAX_COLUMNS = 10_000  # past this a CSV is not a table a Dataset spec describes: refused before parsing it


def _check_width(path: Path, shown: str, delimiter: str) -> None:
    """Count the header's columns before pyarrow infers a type for each (100,000 columns: a minute and
    gigabytes). Quoted delimiters count too: an upper bound, which is all a bound needs."""
    with open(path, "rb") as fh:
        header = fh.readline(1 << 22)
    width = header.count(delimiter.encode()) + 1
    if width > MAX_COLUMNS:
        raise DataError(f"{shown}: its header has {width:,} columns, more than the {MAX_COLUMNS:,} a Dataset reads; "
                        "is the delimiter right (source.delimiter)?")


def _text_only(batch: pa.RecordBatch, shown: str, encoding: str) -> pa.RecordBatch:
    """pyarrow reads text that is not valid in the encoding as a binary column rather than failing."""
    import pyarrow as pa

    for field in batch.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise DataError(f"{shown}: column `{field.name}` is not valid {encoding} text; set source.encoding "
                            "(latin-1, cp1252, ...) to the file's encoding")
    return batch


class DatasetReader:
    """A dataset's files as one stream of batches with one schema.

    Every file must have the same columns; their types are unified up front (an int column in one
    file and a float one in another become float), so the checks and the split files see one schema.
    """

    def __init__(self, files: list[Path], source: Any, workdir: Path) -> None:
        self.files, self.source, self.workdir = files, source, workdir
        self.schema = self._unify()

    def rel(self, path: Path) -> str:
        return repo_path(path, self.workdir)

    def read(self, path: Path) -> Iterator[pa.RecordBatch]:
        source = self.source
        for batch in batches(path, source.format, encoding=source.encoding, delimiter=source.delimiter,
                             rel=self.rel(path)):
            if self.schema is not None and not batch.schema.equals(self.schema):
                batch = _cast(batch, self.schema, self.rel(path))
            yield batch

    def _unify(self) -> pa.Schema | None:
        import pyarrow as pa

        found: list[tuple[str, pa.Schema]] = []
        for path in self.files:
            schema = self._schema_of(path)
            if schema is not None:
                found.append((self.rel(path), schema))
        if not found:
            return None
        first_rel, first = found[0]
        for rel, schema in found[1:]:
            if schema.names != first.names:
                raise DataError(f"{rel}: its columns ({', '.join(schema.names)}) are not those of {first_rel} "
                                f"({', '.join(first.names)}); every file of a dataset has the same columns")
        try:
            return pa.unify_schemas([s for _, s in found], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise DataError(f"the files' column types cannot be reconciled ({_reason(err)}): "
                            f"{', '.join(rel for rel, _ in found)}") from None

    def _schema_of(self, path: Path) -> pa.Schema | None:
        if self.source.format == "parquet":
            import pyarrow.parquet as pq

            try:
                return pq.ParquetFile(path).schema_arrow
            except Exception as err:
                raise DataError(f"{self.rel(path)}: cannot read it as parquet: {_reason(err)}") from None
        first = next(iter(batches(path, self.source.format, encoding=self.source.encoding,
                                  delimiter=self.source.delimiter, rel=self.rel(path))), None)
        return first.schema if first is not None else None


def _cast(batch: pa.RecordBatch, schema: pa.Schema, rel: str) -> pa.RecordBatch:
    import pyarrow as pa

    try:
        columns = [batch.column(f.name).cast(f.type) for f in schema]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise DataError(f"{rel}: a column does not convert to the dataset's type ({_reason(err)})") from None
    return pa.RecordBatch.from_arrays(columns, schema=schema)


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
