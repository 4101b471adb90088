"""`make bench` / `python -m bench`: every benchmark in turn with its default settings (markdown on stdout).

Each can also run alone with its own flags: `python -m bench.bench_pages --help`.
"""

import importlib
import sys

BENCHMARKS = ["bench_phi", "bench_outbox", "bench_fhir", "bench_reports", "bench_pages"]


def main() -> None:
    for name in BENCHMARKS:
        print(f"\n<!-- python -m bench.{name} -->", flush=True)
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}"]
        module.main()


if __name__ == "__main__":
    main()
