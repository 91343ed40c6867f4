from tests.web.conftest import Web


def test_a_therapist_starts_a_session_and_steps_out(web_any: Web) -> None:
    c, a = web_any.client, web_any.a
    r = c.post(
        "/api/v1/sessions",
        json={"client": "c-0001", "room": "room-1", "billed_codes": ["90834"]},
        headers=a.auth("a-ther"),
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    r = c.post(
        f"/api/v1/sessions/{sid}/exits",
        json={"reason": "technical", "explanation": "Back in a moment.", "client_informed": True},
        headers=a.auth("a-ther"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["open"] is True
