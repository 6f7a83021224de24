"""The staff list for admins: who has an account, and switching one off."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nurture.db import audit
from nurture.db.models import StaffSession, StaffUser
from nurture.staff.accounts import StaffError


def users(session: Session) -> list[StaffUser]:
    """Active accounts first, then by e-mail address."""
    return list(
        session.scalars(select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.email))
    )


def deactivate(session: Session, user_id: int, *, by: StaffUser, actor: str) -> StaffUser | None:
    """Switch an account off and end its sessions at once. None when there is no such user;
    StaffError when it is the caller's own account (nobody locks themselves out by a click)."""
    user = session.get(StaffUser, user_id)
    if user is None:
        return None
    if user.id == by.id:
        raise StaffError("you cannot deactivate your own account; ask another admin")
    if not user.active:
        return user
    user.active = False
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    audit.record(
        session,
        actor=actor,
        action="staff.user_deactivated",
        details={"email": user.email, "role": user.role.value},
    )
    return user
