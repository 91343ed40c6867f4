"""The addendum a therapist adds to the session's progress note: plain first-person sentences
built from the exit as recorded. Pure: no storage, no clock."""

from stepout.domain.instants import MICROS_PER_MINUTE
from stepout.domain.records import Exit, Session
from stepout.web.pages.templating import clock, day, plural
from stepout.web.pages.wording import REASONS, SAFEGUARD_PHRASES


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _quoted(words: str) -> str:
    """The words in quotes, ending the sentence (no second full stop after their own)."""
    words = words.strip()
    end = "" if words[-1] in ".!?" else "."
    return f"\u201c{words}\u201d{end}"


def _left(x: Exit, zone: str) -> str:
    when = f"On {day(x.left_at, zone)} at {clock(x.left_at, zone)}"
    if x.reason is None:
        return f"{when} I was out of the session (detected by a sensor; no reason recorded)."
    phrase = REASONS[x.reason].phrase if x.reason in REASONS else x.reason
    note = f": {x.reason_note.strip()}" if x.reason_note and x.reason_note.strip() else ""
    return f"{when} I stepped out of the session because of {phrase}{note}."


def _away(x: Exit, s: Session, zone: str) -> list[str]:
    out: list[str] = []
    if x.expected_minutes is not None:
        out.append(f"I expected to be away about {plural(x.expected_minutes, 'minute')}.")
    if x.returned_at is not None:
        minutes = (x.returned_at - x.left_at) // MICROS_PER_MINUTE
        length = "less than a minute" if minutes < 1 else plural(minutes, "minute")
        out.append(f"I came back at {clock(x.returned_at, zone)}, after {length} away.")
    elif s.end is not None:
        out.append(f"No return was recorded before the session ended at {clock(s.end, zone)}.")
    else:
        out.append("I have not come back yet.")
    return out


def _told(x: Exit) -> str:
    words = x.explanation.strip() if x.explanation and x.explanation.strip() else None
    if x.client_informed == "before_leaving":
        if words is None:
            return "I told the client before leaving; the words were not recorded."
        return f"Before leaving I told the client: {_quoted(words)}"
    if x.client_informed == "after_return":
        if words is None:
            return "I told the client after coming back; the words were not recorded."
        return f"After coming back I told the client: {_quoted(words)}"
    if words is None:
        return "The client was not told why I left."
    return (
        "I did not tell the client before leaving. "
        f"The explanation recorded for the client was: {_quoted(words)}"
    )


def _safeguards(x: Exit) -> str:
    done = [SAFEGUARD_PHRASES[g] for g in SAFEGUARD_PHRASES if g in x.safeguards]
    missing = [SAFEGUARD_PHRASES[g] for g in SAFEGUARD_PHRASES if g not in x.safeguards]
    if not done:
        return "No confidentiality safeguard was confirmed."
    if not missing:
        return f"Confidentiality: {_and(done)}."
    return f"Confidentiality: {_and(done)}; not confirmed: {_and(missing)}."


def _care(x: Exit) -> list[str]:
    out: list[str] = []
    if x.ems == "called":
        out.append("Emergency services were called.")
    elif x.ems == "not_needed":
        out.append("I judged that emergency services were not needed.")
    elif x.reason == "health_emergency":
        out.append("No decision about emergency services was recorded.")
    if x.client_attended_by and x.client_attended_by.strip():
        out.append(f"{x.client_attended_by.strip()} stayed with the client while I was away.")
    elif x.reason in ("health_emergency", "client_safety"):
        out.append("No one was recorded as staying with the client.")
    return out


def addendum(x: Exit, session: Session, zone: str = "UTC") -> str:
    """The addendum text of exit `x` of `session`, times in the practice's `zone`."""
    sentences = [_left(x, zone), *_away(x, session, zone), _told(x), _safeguards(x), *_care(x)]
    if x.returned_at is not None:
        sentences.append(
            "On my return I checked in with the client."
            if x.checked_in
            else "No check-in with the client after my return was recorded."
        )
    return " ".join(sentences)
