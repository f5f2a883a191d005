"""A stream's row numbers as a Ray Data source, made by one read task as the stream is read.

A training worker's stream is its share of the list for every epoch it asks for (on Kinetics,
240,000 rows a worker-epoch), cut into blocks of one decode call each. Putting those blocks in
the object store from the worker before the first read (``ray.data.from_numpy``) costs a put
per block, 30,000 on Kinetics, and holds every block's reference for the whole run: the first
batch came minutes after the start and the worker's memory grew with the list.

Here one read task yields the blocks one after another, as the decode actors ask for them:
nothing is made up front, and what exists at any time is what Ray Data's backpressure lets
through. The task asks for no CPU: it only counts, and the training worker and the decode actors
may already hold every CPU of a small machine (a read task waiting for a CPU would never run).
One is enough, and more would each hold a worker process for as long as the stream runs.

Ray Data merges a read task's blocks up to its target block size, 128 MiB: all the numbers in
one block, one decode task for all of them, and its clips coming out 128 MiB at a time (the
first batch then waits for thousands of videos to be decoded). The stream's own context sets
that target to one block of numbers, so each decode call is a task of its own, as the decode
actors need to take turns in order; its output is then cut into a block per clip, which the
stream reads clip by clip anyway.
"""
from __future__ import annotations

import functools
from typing import Iterator

import numpy as np
import pyarrow as pa
import ray
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

COLUMN = "data"  # the column ``sources.ShareRows`` reads
ROW_BYTES = np.dtype(np.int64).itemsize


def _count(rows: int, block_rows: int) -> Iterator[pa.Table]:
    for start in range(0, rows, block_rows):
        yield pa.table({COLUMN: np.arange(start, min(start + block_rows, rows), dtype=np.int64)})


class RowNumbers(Datasource):
    """The numbers ``0 .. rows - 1``, in blocks of ``block_rows``, in order, from one read task."""

    def __init__(self, rows: int, block_rows: int) -> None:
        super().__init__()
        if rows < 1 or block_rows < 1:
            raise ValueError(f"invalid row numbers: {rows} rows in blocks of {block_rows}")
        self.rows, self.block_rows = rows, block_rows

    def estimate_inmemory_data_size(self) -> int:
        return self.rows * ROW_BYTES

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        metadata = BlockMetadata(num_rows=self.rows, size_bytes=self.rows * ROW_BYTES, input_files=None,
                                 exec_stats=None)
        return [ReadTask(functools.partial(_count, self.rows, self.block_rows), metadata,
                         per_task_row_limit=per_task_row_limit)]


def row_numbers(rows: int, block_rows: int) -> ray.data.Dataset:
    """A Ray Dataset of the numbers ``0 .. rows - 1`` in blocks of ``block_rows``, read in order
    (the same order every run), on a context of its own (no other dataset's blocks change size)."""
    dataset = ray.data.read_datasource(RowNumbers(rows, block_rows), num_cpus=0)
    dataset.context.execution_options.preserve_order = True
    dataset.context.target_max_block_size = block_rows * ROW_BYTES
    return dataset
