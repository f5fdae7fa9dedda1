"""Command line: ``python -m fastgrad {hlsm,mf} ...``.

Each sub-command lives in its own module ``fastgrad.<name>._cli`` exposing
``add_parser(subparsers)`` and ``run(args) -> int``.
"""
import argparse
import importlib
import sys

COMMANDS = ("hlsm", "mf")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastgrad", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    modules = {}
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"fastgrad.{name}._cli")
        except ModuleNotFoundError as exc:
            if exc.name != f"fastgrad.{name}._cli":
                raise
            continue
        mod.add_parser(sub)
        modules[name] = mod
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
