"""The server-rendered pages (Jinja2 + htmx): sign-in, the therapist's console, the room
display, the client's concern form and the supervisor's views."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
