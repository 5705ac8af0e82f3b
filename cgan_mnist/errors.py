"""Errors that reach the user as one line, never as a traceback.

The CLI catches these, prints ``<command>: error: <message>`` on stderr and
exits with ``exit_code``. Library code raises them; it never calls sys.exit.
"""


class UserError(Exception):
    """Something the user can fix; the message names the problem and the fix."""

    exit_code = 1


class UsageError(UserError):
    """A bad command-line argument (exit code 2, like argparse's own errors)."""

    exit_code = 2
