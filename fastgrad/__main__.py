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
    argv = sys.argv[1:] if argv is None else list(argv)
    # only the named command's module (each imports its own family): all of them for help
    wanted = argv[:1] if argv[:1] and argv[0] in COMMANDS else COMMANDS
    for name in wanted:
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


def _exit_now(code):
    """End the process without the interpreter's teardown.

    Once numba has loaded compiled code, tearing the interpreter down took ~0.13-0.2 s
    (module and LLVM finalisation, measured after the atexit handlers had run) -- a
    tenth of a warm ``hlsm`` command. By the time a command returns every file it
    wrote is closed; the atexit handlers still run, and the standard streams are
    flushed, before ``os._exit``.
    """
    import atexit
    import os
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
