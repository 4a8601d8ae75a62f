"""Entry point of the ``nnictl`` console script (also ``python -m nni.tools.nnictl``)."""
from __future__ import annotations

import sys

from .errors import NnictlError
from .parser import build_parser, resolve_handler


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if getattr(args, "version", False) and handler is None:
        handler = "version:print_versions"
    if handler is None:
        # ``nnictl`` or ``nnictl experiment`` alone: help for that level, not a traceback.
        (getattr(args, "level_parser", None) or parser).print_help()
        return 0 if argv == [] or (argv is None and len(sys.argv) == 1) else 2
    try:
        result = resolve_handler(handler)(args)
    except BrokenPipeError:
        # ``nnictl trial ls | head``: the reader left; not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except NnictlError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return err.exit_code
    except (ValueError, KeyError, OSError) as err:
        # User errors (bad config, unknown id, unreadable file) are one line, never a traceback.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ERROR: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
