"""logger=tensorboard: event files under <run>/tb/, the default.

Per epoch, Keras' own TensorBoard callback (tb/train, tb/validation: losses
and learning rate), kept cheap: no graph, no weight histograms, no profiler.
At the end, in tb/test: the test metrics and threshold as scalars, the test
scores of each class as histograms, the metrics table as text, and a few test
images above their reconstructions. A resumed run adds event files to the
same folders, and its epochs go on from where the first run stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomaly_cli.logging_backends.base import CLASSES, TB_DIR, Backend, RunResults
from anomaly_cli.reporting.overlay import to_rgb


class TensorBoardBackend(Backend):
    def callbacks(self) -> list[Any]:
        import keras

        return [
            keras.callbacks.TensorBoard(
                log_dir=str(self.run_dir / TB_DIR),
                histogram_freq=0,
                write_graph=False,
                write_images=False,
                write_steps_per_second=False,
                update_freq="epoch",
                profile_batch=0,
            )
        ]

    def finish(self, results: RunResults) -> None:
        import tensorflow as tf

        step = results.epochs
        writer = tf.summary.create_file_writer(str(self.run_dir / TB_DIR / "test"))
        with writer.as_default():
            for name, value in results.metrics.items():
                tf.summary.scalar(f"test/{name}", value, step=step)
            tf.summary.scalar("test/threshold", results.threshold, step=step)
            for name, scores in results.class_scores().items():
                if len(scores):
                    tf.summary.histogram(f"scores/{name}", scores, step=step)
            if results.table:
                # Markdown: indented lines keep the table's columns.
                text = "\n".join(f"    {line}" for line in results.table.splitlines())
                tf.summary.text("test/metrics", text, step=step)
            for name in CLASSES:
                pair = results.reconstructions(name, int(self.cfg.logger.get("images", 0)))
                if pair is not None:
                    grid = _above(*pair, results.value_range)
                    tf.summary.image(f"reconstructions/{name}", grid[None], step=step)
        writer.close()


def _above(
    originals: np.ndarray, rebuilt: np.ndarray, value_range: tuple[float, float] | None
) -> np.ndarray:
    """One uint8 picture: the originals in a row above their reconstructions."""
    if value_range is None:  # e.g. standardised pixels: show the originals' own range
        value_range = (float(originals.min()), float(originals.max()))
    rows = [
        np.concatenate([to_rgb(image, value_range) for image in part], axis=1)
        for part in (originals, rebuilt)
    ]
    return np.round(np.concatenate(rows, axis=0) * 255).astype(np.uint8)
