"""User-facing errors: one clear line naming the file and what to do, never a traceback."""
import errno
import functools
import sys

# a file that cannot be written for reasons outside the program (permissions, a full or read-only disk)
UNWRITABLE = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


class InputError(Exception):
    """Bad input from the user (a file that is missing, malformed or of the wrong kind).

    The message is a single line that names the file and says how to fix it.
    """


def cli_entry(main):
    """Wrap a script's ``main`` so that bad input ends with one line on stderr.

    ``InputError`` exits with status 2, as does a file that cannot be written
    (permissions, a full disk); Ctrl-C with status 130; any other exception
    is a bug and keeps its traceback.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
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

    return wrapper
