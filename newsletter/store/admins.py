"""The admins of the web app: several, each with their own password, no roles (migration 0009).

`newsletter admin add NAME` stores a name and the scrypt hash of a password typed at a prompt.
The password of `[web] admin_password_hash` (or its environment variable) keeps working as the
admin named "admin" (`LEGACY_ADMIN`) without a row; a row named "admin" takes its place.
Sessions (`store.admin_auth`) name their admin: removing an admin, or changing their password,
ends that admin's sessions and nobody else's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import NewsletterError
from newsletter.passwords import hash_password
from newsletter.store.admin_auth import end_sessions_of
from newsletter.store.models import LEGACY_ADMIN
from newsletter.store.models import Admin
from newsletter.store.models import utcnow

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1000


class AdminError(NewsletterError, ValueError):
    """A bad admin name or password, or an admin that does not exist (or already does)."""


@dataclasses.dataclass(frozen=True)
class AdminInfo:
    """One admin as `admin list` shows it."""

    name: str
    created_at: dt.datetime | None
    last_login_at: dt.datetime | None
    legacy: bool = False  # the configured `[web] admin_password_hash`, not a row


def check_name(name: str) -> str:
    """The admin name, lowercased; `AdminError` unless 1-64 of a-z, 0-9, '.', '_', '-'."""
    cleaned = name.strip().lower()
    if not NAME_RE.fullmatch(cleaned):
        raise AdminError(
            f"admin name {name[:80]!r}: use 1-64 characters a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return cleaned


def check_password(password: str) -> str:
    """`AdminError` for a password under 10 characters (or absurdly long)."""
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"password: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AdminError(f"password: at most {MAX_PASSWORD} characters")
    return password


def _row(session: Session, name: str) -> Admin | None:
    return session.scalars(select(Admin).where(Admin.name == name)).first()


def add_admin(session: Session, name: str, password: str) -> Admin:
    """A new admin with this password (hashed here). `AdminError` if the name is taken."""
    name = check_name(name)
    check_password(password)
    if _row(session, name) is not None:
        raise AdminError(f"there is already an admin named {name!r}")
    admin = Admin(name=name, password_hash=hash_password(password), created_at=utcnow())
    session.add(admin)
    session.flush()
    return admin


def set_password(session: Session, name: str, password: str) -> Admin:
    """A new password for an admin: their open sessions end (`AdminError` if there is none)."""
    check_password(password)
    admin = require_admin(session, name)
    admin.password_hash = hash_password(password)
    end_sessions_of(session, admin.name)
    session.flush()
    return admin


def require_admin(session: Session, name: str) -> Admin:
    """The admin row NAME; `AdminError` naming the known admins when there is none."""
    admin = _row(session, name.strip().lower()[:64])
    if admin is None:
        known = ", ".join(session.scalars(select(Admin.name).order_by(Admin.name))) or "none"
        raise AdminError(f"no admin named {name[:80]!r} (admins added: {known})")
    return admin


def remove_admin(session: Session, name: str) -> None:
    """Remove an admin: their sessions end at once, their audit entries stay."""
    admin = require_admin(session, name)
    end_sessions_of(session, admin.name)
    session.delete(admin)
    session.flush()


def list_admins(session: Session, legacy_hash: str = "") -> list[AdminInfo]:
    """Every admin by name, the configured legacy one included (unless a row replaces it)."""
    found = [
        AdminInfo(row.name, row.created_at, row.last_login_at)
        for row in session.scalars(select(Admin).order_by(Admin.name))
    ]
    if legacy_hash and all(info.name != LEGACY_ADMIN for info in found):
        found.append(AdminInfo(LEGACY_ADMIN, None, None, legacy=True))
        found.sort(key=lambda info: info.name)
    return found


def password_hash_of(session: Session, name: str, legacy_hash: str = "") -> str:
    """The stored password hash of the admin NAME ("" when there is no such admin)."""
    if not NAME_RE.fullmatch(name):
        return ""
    row = _row(session, name)
    if row is not None:
        return row.password_hash
    return legacy_hash if name == LEGACY_ADMIN else ""


def any_admin(session: Session, legacy_hash: str = "") -> bool:
    """Whether anyone can log in at all."""
    return bool(legacy_hash) or session.scalars(select(Admin.id).limit(1)).first() is not None


def logged_in(session: Session, name: str, now: dt.datetime) -> None:
    """Note the admin's successful login (no row for the legacy admin: nothing to note)."""
    row = _row(session, name)
    if row is not None:
        row.last_login_at = now
