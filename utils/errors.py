"""User-facing errors: one clear line naming the file and what to do, never a traceback."""
import functools
import sys


class InputError(Exception):
    """Bad input from the user (a file that is missing, malformed or of the wrong kind).

    The message is a single line that names the file and says how to fix it.
    """


def cli_entry(main):
    """Wrap a script's ``main`` so that bad input ends with one line on stderr.

    ``InputError`` exits with status 2, Ctrl-C with status 130; any other
    exception is a bug and keeps its traceback.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: finished outputs are kept, re-run to continue", file=sys.stderr)
            sys.exit(130)

    return wrapper
