"""The addresses Stepout hands out: a room display's page and a session's concern link."""

from stepout.services.credentials import concern_code


def display_path(room: str, token: str) -> str:
    """The room display page, opened with the room's token."""
    return f"/display/{room}?token={token}"


def concern_path(secret: bytes, session_id: str) -> str:
    """The client's private link to raise a concern about one session."""
    return f"/c/{session_id}/{concern_code(secret, session_id)}"
