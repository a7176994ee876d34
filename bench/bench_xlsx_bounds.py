"""What reading a roster workbook within bounds costs, beside openpyxl's plain read, in one run.

    python bench/bench_xlsx_bounds.py [--rows 100000] [--runs 7]

Writes a roster workbook (openpyxl, inline strings, as ``resident export`` writes it) of
``--rows`` rows, then times, interleaved, every row of its first sheet read:

plain    openpyxl's read-only mode with the dimension set aside (``reset_dimensions``): what
         reading every row costs at least;
bounded  ``commcare.roster.workbook.first_sheet_rows``: the archive's directory checked, then the
         sheet streamed through the per-block check of each cell's length.

Prints the medians of the CPU time each takes (this process's, so that the other work of a
shared machine weighs less) and their ratio (bounded / plain).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def make(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("花名册")
    sheet.append(["姓名", "身份证号", "联系电话", "小区", "住址", "人群类别", "备注"])
    for i in range(rows):
        sheet.append(
            [
                f"居民{i}",
                f"41010519300101{i % 10000:04d}",
                f"139{i:08d}",
                f"小区{i % 40}",
                f"{i // 3}号",
                "老人" if i % 4 else "",
                "行动不便" if i % 7 == 0 else "",
            ]
        )
    book.save(path)


def plain(path: Path) -> int:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    sheet = book.worksheets[0]
    sheet.reset_dimensions()
    count = sum(1 for _ in sheet.iter_rows(min_row=1, min_col=1, values_only=True))
    book.close()
    return count


def bounded(path: Path) -> int:
    from commcare.roster.workbook import first_sheet_rows

    rows, _ = first_sheet_rows(path, str(path))
    return sum(1 for _ in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roster.xlsx"
        make(path, args.rows)
        times: dict[str, list[float]] = {"plain": [], "bounded": []}
        for _ in range(args.runs):
            for name, fn in (("plain", plain), ("bounded", bounded)):
                start = time.process_time()
                assert fn(path) == args.rows + 1
                times[name].append(time.process_time() - start)
    plain_s, bounded_s = (statistics.median(times[k]) for k in ("plain", "bounded"))
    print({k: [round(t, 2) for t in v] for k, v in times.items()})
    print(
        f"rows {args.rows}, runs {args.runs}: plain {plain_s:.3f} s CPU, bounded {bounded_s:.3f} s CPU, "
        f"ratio {bounded_s / plain_s:.3f}"
    )


if __name__ == "__main__":
    main()
