"""User-facing errors: one clear line naming the file and what to do, never a traceback."""
import errno
import functools
import sys
import warnings
from typing import Callable, TypeVar

# a file that cannot be written for reasons outside the program (permissions, a full or read-only disk)
UNWRITABLE = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


Result = TypeVar("Result")


class InputError(Exception):
    """Bad input from the user (a file that is missing, malformed or of the wrong kind).

    The message is a single line that names the file and says how to fix it.
    """


class InputWarning(UserWarning):
    """A doubt about the user's input (the file and what to check), shown by scripts as one ``warning:`` line."""


def _one_line_warnings(default):
    """A ``warnings.showwarning`` for scripts: an ``InputWarning`` as one line, any other one as ``default`` does."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def cli_entry(main: Callable[..., Result]) -> Callable[..., Result]:
    """Wrap a script's ``main`` so that bad input ends with one line on stderr.

    ``InputError`` exits with status 2, as does a file that cannot be written
    (permissions, a full disk); Ctrl-C with status 130; any other exception
    is a bug and keeps its traceback. An ``InputWarning`` prints as one ``warning:`` line.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        default = warnings.showwarning
        warnings.showwarning = _one_line_warnings(default)
        try:
            return main(*args, **kwargs)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except OSError as err:
            if err.errno not in UNWRITABLE:
                raise
            print(f"error: {err.filename or 'a file'}: {err.strerror}; free some space or make the folder "
                  "writable, then re-run", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: finished outputs are kept, re-run to continue", file=sys.stderr)
            sys.exit(130)
        finally:
            warnings.showwarning = default

    return wrapper
