"""What every request handler reaches: the database, the command handlers, the accounts, the
policy, live updates and the keys, built once per app from the settings."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from stepout.config import Settings
from stepout.crypto.keys import Keys
from stepout.domain.instants import Instant
from stepout.policy.model import Policy
from stepout.services.accounts import AccountService
from stepout.services.workflow import Clock, Workflow
from stepout.web.live import Hub, Notifier

if TYPE_CHECKING:
    from stepout.adapters.db import Database
    from stepout.services.presence import PresenceServices


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: "Database"
    workflow: Workflow
    accounts: AccountService
    policy: Policy
    hub: Hub
    notifier: Notifier
    keys: Keys
    clock: Clock
    presence: "PresenceServices | None" = None  # exits nobody declared (web/api/presence.py)

    def now(self) -> Instant:
        return self.clock()


async def app_state(request: Request) -> AppState:
    """(Async only so that FastAPI calls it in place, not on a worker thread.)"""
    state: AppState = request.app.state.stepout
    return state
