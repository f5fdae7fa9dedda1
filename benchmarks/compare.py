"""Side-by-side peer comparison: ``python benchmarks/compare.py [family ...]``.

Each family has a module ``benchmarks/peers_<family>.py`` with a function
``run(quick=False) -> list[dict]``; every dict is one measured comparison with
keys ``task``, ``fastgrad_s``, ``peer``, ``peer_s`` (and optionally ``note``).
This script runs them in one process and prints the ratios.
"""
import argparse
import importlib
import os
import sys

FAMILIES = ("hlsm", "glm", "multinomial", "mf")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    args = parser.parse_args(argv)
    # import the peer modules as ``benchmarks.peers_<family>`` (as asv does)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    rows = []
    for fam in args.families:
        try:
            mod = importlib.import_module(f"benchmarks.peers_{fam}")
        except ModuleNotFoundError as exc:
            print(f"[{fam}] skipped: {exc}")
            continue
        print(f"== {fam} ==", flush=True)
        for row in mod.run(quick=args.quick):
            rows.append(row)
            ratio = row["peer_s"] / row["fastgrad_s"] if row["fastgrad_s"] > 0 else float("inf")
            note = f"  [{row['note']}]" if row.get("note") else ""
            print(f"  {row['task']:<48s} fastgrad {row['fastgrad_s']*1e3:10.2f} ms | "
                  f"{row['peer']:<28s} {row['peer_s']*1e3:10.2f} ms | speed-up x{ratio:7.2f}{note}",
                  flush=True)
    return rows


if __name__ == "__main__":
    main()
