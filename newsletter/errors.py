"""One exception tree for the whole package.

Every error the package raises on purpose derives from `NewsletterError`, so the CLI and the
web app can turn it into a clean message, and every library error a caller can meet is caught
where it happens and raised again as one of these. Where a stdlib error fits, we subclass it
too. Callers decide on the class, never on the message text.

    NewsletterError
    ├── ConfigError (ValueError)
    ├── DatabaseError
    ├── ContentError (ValueError)
    │   └── ContentProblems       several at once (`issues check` lists every one)
    ├── TaxonomyError (LookupError)
    ├── InvalidAddress (ValueError)
    ├── SubscriberError (ValueError)
    ├── ImportFileError (ValueError)
    │   └── RowsRejected          some rows are invalid; nothing was imported
    ├── UnsafeHeader (ValueError)  a header value with CR/LF or controls, never written
    ├── RenderError
    ├── TokenError (ValueError)
    │   └── TokenExpired
    ├── TransportError
    │   ├── TemporaryFailure
    │   └── PermanentFailure
    ├── SendError
    │   ├── IssueNotReady         the issue fails `issues check`: nothing is planned
    │   ├── TransportUnavailable  no connection could be opened: nothing was claimed
    │   └── NoMatchingVariant     none of a reader's topics is in the issue
    ├── MailboxError (ValueError)
    ├── ScheduleError (ValueError)
    ├── SchedulerLockedError
    ├── ArchiveError
    ├── OutputFileError (OSError)  a file we were asked to write could not be written
    ├── CannotListen              a server cannot listen on the host and port it was given
    ├── LinkProblem               a link in an email that cannot be used (kind says why)
    ├── FormProblem (ValueError)  a form value to fix
    ├── ChangedElsewhere          the issue editor's file changed on disk: nothing saved
    ├── InvalidEdit               an edit in the issue editor fails the checks (per field)
    ├── ReadOnlyIssue             the issue is being sent or was sent
    └── AdminError (ValueError)   a bad admin name or password, an unknown or existing admin
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a module-level class here would count as one of our errors
    from pathlib import Path


class NewsletterError(Exception):
    """Base of every error raised on purpose by this package."""


class ConfigError(NewsletterError, ValueError):
    """The configuration file is missing, malformed or invalid; the message names the key."""


class DatabaseError(NewsletterError):
    """The database cannot be reached or opened (refused, unknown host, bad password, a file
    that is not a database); the message names `[database] url`."""


class ContentError(NewsletterError, ValueError):
    """A content file is invalid. The message names the file (and field or line)."""

    def __init__(self, path: object, message: str, *, field: str | None = None) -> None:
        self.path = str(path)
        self.field = field
        self.detail = message
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + message)


class ContentProblems(ContentError):
    """Several content errors found in one read of a month; `problems` holds each of them
    (file order). The message lists them all, so every caller shows every problem at once:
    `<file>: <field>: <problem>; <field>: <problem> (2 problems)`, each file named once."""

    def __init__(self, path: object, problems: list[ContentError]) -> None:
        self.problems = list(problems)
        files = list(dict.fromkeys(problem.path for problem in self.problems))
        one_file = len(files) == 1
        listed = [str(self.problems[0])]
        for before, problem in zip(self.problems, self.problems[1:], strict=False):
            short = f"{problem.field}: {problem.detail}" if problem.field else problem.detail
            listed.append(short if problem.path == before.path else str(problem))  # file once
        counted = f"{len(self.problems)} problems" + ("" if one_file else f" in {len(files)} files")
        message = "; ".join(listed) + f" ({counted})"
        NewsletterError.__init__(self, message)
        self.path = files[0] if one_file else str(path)
        self.field = None
        self.detail = message.removeprefix(f"{self.path}: ")


def raise_content_problems(path: object, problems: list[ContentError]) -> None:
    """Raise the one problem itself, several as `ContentProblems` (named by their one file, else
    by `path`); nothing when there are none."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ContentProblems(path, problems)


class TaxonomyError(NewsletterError, LookupError):
    """An unknown topic or research type."""


class InvalidAddress(NewsletterError, ValueError):
    """An email address that does not validate."""


class SubscriberError(NewsletterError, ValueError):
    """A subscriber operation that cannot be done (unknown address, bad status, ...)."""


class InvalidPreference(SubscriberError):
    """A preference value out of range (pause months, frequency); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class SubscriberConflict(SubscriberError):
    """The address is already a subscriber, or is on the suppression list (HTTP 409)."""


class ImportFileError(NewsletterError, ValueError):
    """A subscriber import file with invalid rows; `rejected` lists (line, reason)."""

    def __init__(self, message: str, rejected: list[tuple[int, str]] | None = None) -> None:
        self.rejected = rejected or []
        super().__init__(message)


class RowsRejected(ImportFileError):
    """Some rows of an import file are invalid, so nothing was imported; `rejected` lists them."""


class UnsafeHeader(NewsletterError, ValueError):
    """A header value the message builder refuses to write: a line break or other control
    character (header injection), or a non-ASCII address."""


class RenderError(NewsletterError):
    """A template failed to render or produced invalid output."""


class TokenError(NewsletterError, ValueError):
    """A signed token that is tampered with, expired or meant for another purpose."""


class TransportError(NewsletterError):
    """Delivering a message failed. `code` and `reply` carry the server's answer when known."""

    def __init__(self, message: str, *, code: int | None = None, reply: str = "") -> None:
        self.code = code
        self.reply = reply
        super().__init__(message)


class TemporaryFailure(TransportError):
    """Worth retrying later: 4xx replies, dropped connections, timeouts, TLS hiccups."""


class PermanentFailure(TransportError):
    """Not worth retrying: 5xx replies, refused recipients, bad configuration of the message."""


class SendError(NewsletterError):
    """A campaign cannot be planned or run (nothing to send, already running, ...)."""


class IssueNotReady(SendError):
    """The issue fails the checks of `newsletter issues check` (e.g. Gmail would clip it)."""


class TransportUnavailable(SendError):
    """The transport cannot be used at all (connection refused, no STARTTLS, a rejected
    login): the run stops before claiming any row."""


class NoMatchingVariant(SendError):
    """None of a reader's topics is in the issue, so they would get no email."""


class MailboxError(NewsletterError, ValueError):
    """A path that is neither a Maildir (cur/, new/, tmp/) nor an mbox file."""


class ScheduleError(NewsletterError, ValueError):
    """A one-off send that cannot be queued or removed (past time, no content, unknown id)."""


class SchedulerLockedError(NewsletterError):
    """Another scheduler holds the lock of this database (or took it over from us)."""


class ArchiveError(NewsletterError):
    """The site could not be built or written; the previous site is left as it was."""


class TokenExpired(TokenError):
    """A signed token that verified but is older than its purpose allows (confirmation links)."""


class LinkProblem(NewsletterError):
    """A link that cannot be used; `kind` is expired, invalid, gone, test or stale."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class FormProblem(NewsletterError, ValueError):
    """A form value to fix; the message is shown above the form, and next to the form field
    `field` names (tied to it with `aria-describedby`) when it names one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    def field_errors(self) -> dict[str, list[str]]:
        """{field: [message]} for the form's field, {} when it names none."""
        return {self.field: [str(self)]} if self.field else {}


class OutputFileError(NewsletterError, OSError):
    """A file the user named for output could not be written; nothing was left half-written."""


class CannotListen(NewsletterError):
    """`serve` or `archive serve` cannot listen on the host and port given (busy, not ours)."""


class ChangedElsewhere(NewsletterError):
    """A content file changed on disk since the editor read it: nothing was saved. `current`
    is its text now (None: deleted), `version` that text's version."""

    def __init__(self, path: Path, current: str | None, version: str) -> None:
        self.path = path
        self.current = current
        self.version = version
        what = "was deleted" if current is None else "changed"
        super().__init__(f"{path.name} {what} elsewhere since you opened it; nothing was saved")


class InvalidEdit(NewsletterError):
    """An edit in the issue editor does not pass the checks: `problems` maps each field to its
    messages."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        self.problems = problems
        listed = "; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items())
        super().__init__(f"not saved: {listed}")


class ReadOnlyIssue(NewsletterError):
    """The issue is being sent or was sent: it cannot be edited (a sent summary can be
    corrected)."""


class AdminError(NewsletterError, ValueError):
    """A bad admin name or password, or an admin that does not exist (or already does)."""
