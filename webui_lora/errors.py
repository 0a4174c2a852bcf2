"""The problems a user can fix, and the one line each becomes in every command and tab.

Every error about a user's files or choices is a ``UserError`` (or one of lora_core's ``LoRAError``s,
which follow the same rule): its message starts with the file or setting at fault, then says what is
wrong and what to do. ``user_message`` turns one into the line a command prints after ``error:`` or a
tab shows; anything it does not recognise is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Optional

from lora_core import LoRAError


class UserError(ValueError):
    """A user's file or choice cannot be used; the message names it and says what to do."""

    def __init__(self, subject, problem: Optional[str] = None):
        self.subject = str(subject)
        self.problem = problem
        super().__init__(self.subject if problem is None else f"{self.subject}: {problem}")


def user_message(err: BaseException) -> Optional[str]:
    """The one-line message for an error a user can act on, or None for a bug."""
    if isinstance(err, (UserError, LoRAError)):
        text = str(err)
    elif isinstance(err, OSError):
        # Built-in OSErrors read "[Errno 13] Permission denied: '/x'"; ours carry their own message.
        text = f"{err.filename}: {err.strerror}" if err.filename and err.strerror else str(err)
    else:
        return None
    return " ".join(text.split())


def describe_error(err: BaseException, log) -> str:
    """What a page shows for a failed action: the user's one line, or for a bug a short name of it,
    its traceback going to ``log`` (a ``logging.Logger``) for the server's console."""
    message = user_message(err)
    if message is None:
        log.error("unexpected error", exc_info=err)
        message = f"unexpected {type(err).__name__}: {err} (the server log has the details)"
    return message


def check_new_output(out, suffix: str, inputs, what: str) -> None:
    """Refuse an output that is not a ``suffix`` file (``what`` says which kind is written) or that is
    one of the ``inputs``: every command writes a new file and never overwrites what it reads."""
    from pathlib import Path

    out = Path(out)
    if out.suffix != suffix:
        raise UserError(out, f"this writes {what}: name it *{suffix}")
    for given in inputs:
        if given and Path(given).exists() and Path(given).resolve() == out.resolve():
            raise UserError(out, "is one of the inputs; pick another output name, nothing was written")
