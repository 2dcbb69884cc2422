"""The one exception type the CLI turns into a clean one-line error (no traceback)."""


class AsrError(Exception):
    """A problem with the user's input (a file, a manifest, a checkpoint, a config).

    The message names the file or line and says what is wrong; the CLI prints it as
    ``asr: error: <message>`` and exits non-zero.
    """
