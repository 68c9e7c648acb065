"""Exit codes of the labreport command (like httpie's ExitStatus); listed in the README."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # any LabreportError without a more specific code
    USAGE = 2  # click's own usage errors
    PARSE_ERROR = 3
    SNAPSHOT_ERROR = 4
    COLLECTION_ERROR = 5
    TRANSPORT_ERROR = 6
    RENDER_ERROR = 7
    PARTIAL = 10  # the job finished but the result is marked partial (a node or collector missing)
    ALL_FAILED = 11  # collect: not one node could be collected (the snapshot holds only the reasons)
    INTERNAL = 70  # a bug: an unexpected exception (use --traceback to see it)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM (collect still writes the nodes it finished)
