"""New data in batches, through the trained run's own preprocessing or fitted transform.

Each reader yields model-ready float32 batches and, as it goes, records the id
of every sample it yielded (`ids`) and every input it could not use
(`unreadable`: path or row id, and why). Nothing holds the whole input:
images are decoded file by file in a tf.data pipeline (the same
`read_pixels` + `ImagePreprocess.apply` as training), tables are read in
chunks, and series windows are cut batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_cli.data.images import IMAGE_SUFFIXES, image_files, read_pixels
from anomaly_cli.data.inputs import unreadable
from anomaly_cli.data.preprocess import ImagePreprocess
from anomaly_cli.errors import AdxUserError, first_lines
from anomaly_cli.prediction.source import (
    IMAGES,
    TABLE,
    TABLE_SUFFIXES,
    PredictInput,
    TrainedRun,
    hidden,
)

if TYPE_CHECKING:
    import pandas as pd

# Rows of a table read at a time: small next to any model, large enough for pandas.
TABLE_CHUNK_ROWS = 8192
# How a progress callback is told that `n` more inputs were read.
Progress = Callable[[int], None]


@dataclass
class Reader:
    """One input, read in batches; `ids` and `unreadable` fill as the batches are used."""

    # "path" for files, "id" for table rows and series windows: predictions.csv's first column.
    id_name: str
    # Inputs to read, when known up front (files, parquet rows), for the progress bar.
    total: int | None
    # batches(batch_size, progress): the model-ready batches, set by the reader's maker.
    batches: Callable[[int, Progress], Iterator[np.ndarray]] = lambda size, progress: iter(())
    ids: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    # The files behind an image input, read again for the heatmaps.
    source: ImageFiles | None = None


def open_reader(trained: TrainedRun, given: PredictInput) -> Reader:
    if trained.kind == IMAGES:
        return ImageFiles.find(given.path, trained.image_preprocess()).reader()
    if trained.kind == TABLE:
        return _table_reader(trained, given)
    return _series_reader(trained, given)


@dataclass(frozen=True)
class ImageFiles:
    """Image files to score: a folder (with its sub-folders) or one file."""

    paths: list[Path]
    # What predictions.csv calls each file: its path below the input folder.
    names: list[str]
    prep: ImagePreprocess

    @classmethod
    def find(cls, path: Path, prep: ImagePreprocess) -> ImageFiles:
        if path.is_file():
            return cls([path], [path.name], prep)
        paths = [p for p in image_files(path, recursive=True) if not hidden(p, path)]
        if not paths:  # checked before, but the folder may have changed since
            raise AdxUserError(f"input={path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return cls(paths, [p.relative_to(path).as_posix() for p in paths], prep)

    def reader(self) -> Reader:
        reader = Reader("path", len(self.paths), source=self)
        reader.batches = lambda size, progress: self._batches(reader, size, progress)
        return reader

    def _batches(self, reader: Reader, batch_size: int, progress: Progress) -> Iterator[np.ndarray]:
        errors: dict[int, str] = {}
        done = 0
        for indices, x in self.dataset(batch_size, errors).as_numpy_iterator():
            reader.ids.extend(self.names[i] for i in indices)
            taken = int(indices[-1]) + 1
            progress(taken - done)
            done = taken
            yield x
        progress(len(self.paths) - done)
        reader.unreadable.extend((self.names[i], errors[i]) for i in sorted(errors))

    def dataset(self, batch_size: int, errors: dict[int, str]) -> Any:
        """(indices, images) batches of the files that decode; the others land in `errors`."""
        import tensorflow as tf

        channels, prep = self.prep.num_channels, self.prep

        def read(index: np.ndarray, path: bytes) -> tuple[np.ndarray, bool]:
            try:
                return read_pixels(path, channels), np.bool_(True)
            except Exception as error:  # PIL raises many kinds for broken files
                errors[int(index)] = unreadable(error)
                return np.zeros((1, 1, channels), np.uint8), np.bool_(False)

        def load(index: Any, path: Any) -> tuple[Any, Any, Any]:
            pixels, ok = tf.numpy_function(read, [index, path], [tf.uint8, tf.bool])
            pixels.set_shape((None, None, channels))
            ok.set_shape(())
            return index, ok, prep.apply(pixels)

        files = tf.data.Dataset.from_tensor_slices(
            (np.arange(len(self.paths), dtype=np.int64), [str(p) for p in self.paths])
        )
        images = files.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        kept = images.filter(lambda index, ok, image: ok)
        kept = kept.map(lambda index, ok, image: (index, image))
        return kept.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def images(self, indices: list[int], batch_size: int) -> Iterator[tuple[list[int], np.ndarray]]:
        """Preprocessed images of the files at `indices` (all readable), for the heatmaps."""
        subset = ImageFiles([self.paths[i] for i in indices], [], self.prep)
        errors: dict[int, str] = {}
        for positions, x in subset.dataset(batch_size, errors).as_numpy_iterator():
            yield [indices[p] for p in positions], x


def _table_reader(trained: TrainedRun, given: PredictInput) -> Reader:
    from anomaly_cli.data.tabular_transform import TabularTransform
    from anomaly_cli.data.transforms import SavedTransformError

    try:
        transform = TabularTransform.from_dict(trained.transform)
    except SavedTransformError as error:
        raise AdxUserError(
            f"{trained.path}/data_transform.json is not a tabular transform ({error}); "
            "predict needs the run that was trained with dataset=tabular"
        ) from None
    id_column = trained.cfg.dataset.get("id_column")
    gaps_allowed = trained.cfg.dataset.get("missing") == "impute"
    total = _parquet_rows(given.path)
    reader = Reader("id", total)

    def batches(batch_size: int, progress: Progress) -> Iterator[np.ndarray]:
        first = 0
        for chunk in _table_chunks(given.path):
            ids = _row_ids(chunk, id_column, first)
            first += len(chunk)
            good = _usable_rows(chunk, transform, gaps_allowed, ids, reader.unreadable)
            rows = chunk[good]
            progress(len(chunk))
            if not len(rows):
                continue
            x = transform.apply(rows)
            reader.ids.extend(ids[good])
            for start in range(0, len(x), batch_size):
                yield x[start : start + batch_size]
        if first == 0:
            raise AdxUserError(f"input={given.path} holds no rows; pass a table with data")

    reader.batches = batches
    return reader


def _parquet_rows(path: Path) -> int | None:
    if TABLE_SUFFIXES.get(path.suffix.lower()) != "parquet":
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _table_chunks(path: Path) -> Iterator[pd.DataFrame]:
    import pandas as pd

    try:
        if TABLE_SUFFIXES.get(path.suffix.lower()) == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=TABLE_CHUNK_ROWS):
                chunk = batch.to_pandas()
                chunk.columns = [str(c) for c in chunk.columns]
                yield chunk
            return
        with pd.read_csv(path, chunksize=TABLE_CHUNK_ROWS) as chunks:
            for chunk in chunks:
                chunk.columns = [str(c) for c in chunk.columns]
                yield chunk
    except AdxUserError:
        raise
    except Exception as error:  # pandas and pyarrow raise many kinds for broken files
        raise AdxUserError(
            f"input={path} cannot be read as a table ({first_lines(error)[:160]}); "
            "fix the file or pass another"
        ) from error


def _row_ids(chunk: pd.DataFrame, id_column: Any, first: int) -> np.ndarray:
    """The run's id column where the table has it, else the row number in the file
    ("row-000017", as dataset=tabular numbers rows)."""
    from anomaly_cli.data.inputs import as_text

    if id_column is not None and str(id_column) in chunk.columns:
        texts = as_text(chunk[str(id_column)])
        numbers = range(first, first + len(chunk))
        pairs = zip(texts, numbers, strict=True)
        return np.array([t if t is not None else f"row-{n:06d}" for t, n in pairs])
    return np.array([f"row-{n:06d}" for n in range(first, first + len(chunk))])


def _usable_rows(
    chunk: pd.DataFrame,
    transform: Any,
    gaps_allowed: bool,
    ids: np.ndarray,
    bad: list[tuple[str, str]],
) -> np.ndarray:
    """Rows the transform can take; the others go to `bad` with the reason.

    Text in a numeric column and infinite values are never usable; an empty
    cell is filled with the train median when the run imputed gaps
    (dataset.missing=impute), and makes the row unusable when it refused them.
    """
    import pandas as pd

    usable = np.ones(len(chunk), dtype=bool)
    reasons = [""] * len(chunk)
    for column in transform.numeric_columns:
        raw = chunk[column]
        values = pd.to_numeric(raw, errors="coerce")
        text = (values.isna() & raw.notna()).to_numpy()
        infinite = np.isinf(values.to_numpy(np.float64, na_value=0.0))
        empty = raw.isna().to_numpy() if not gaps_allowed else np.zeros(len(chunk), bool)
        checks = ((text, "is not a number"), (infinite, "is infinite"), (empty, "is empty"))
        for mask, why in checks:
            for row in np.flatnonzero(mask & usable):
                reasons[row] = f"column {column} {why}"
            usable &= ~mask
        chunk[column] = values
    bad.extend((str(ids[row]), reasons[row]) for row in np.flatnonzero(~usable))
    return usable


def _series_reader(trained: TrainedRun, given: PredictInput) -> Reader:
    """Windows of the run's length and stride over the whole series, in time order."""
    from anomaly_cli.data.series.gaps import fill_missing
    from anomaly_cli.data.series.reading import read_series
    from anomaly_cli.data.series.windows import window_starts
    from anomaly_cli.data.timeseries import saved_zscore
    from anomaly_cli.prediction.source import table_columns

    dataset = trained.cfg.dataset
    window, stride = int(dataset.window), int(dataset.stride)
    time_column = dataset.get("time_column")
    if time_column is not None and str(time_column) not in table_columns(given.path):
        time_column = None  # new data may come without it: the file's order is the time order
    try:
        frame = read_series(given.path, time_column)
    except AdxUserError as error:  # the series source names its own key; here it is input=
        raise AdxUserError(str(error).replace("dataset.path=", "input=")) from None
    columns = list(given.columns)
    zscore = saved_zscore(trained.transform, columns)
    values, _ = fill_missing(frame, columns, "impute", given.path)
    if len(values) < window:
        raise AdxUserError(
            f"input={given.path} has {len(values)} points, fewer than the run's window of "
            f"{window}; pass a longer series"
        )
    starts = window_starts(0, len(values), window, stride)
    times = None if time_column is None else frame[time_column].to_numpy()
    reader = Reader("id", len(starts))

    def batches(batch_size: int, progress: Progress) -> Iterator[np.ndarray]:
        for begin in range(0, len(starts), batch_size):
            part = starts[begin : begin + batch_size]
            offsets = part[:, None] + np.arange(window)[None, :]
            reader.ids.extend(f"t={times[s] if times is not None else s}" for s in part)
            progress(len(part))
            yield zscore.apply(values[offsets])

    reader.batches = batches
    return reader
