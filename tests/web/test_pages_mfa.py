"""The second step of signing in to the pages: enrolment with a QR code of the otpauth:// URI,
the code from the authenticator app, recovery codes that work once, no replayed code, no page
for a half-signed-in browser, throttled codes, and the demo practice's waiver said on screen.

Accounts, passwords and secrets are synthetic."""

import re

import pyotp
import pytest
import segno
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import text

from stepout.services import mfa
from stepout.services.signin import PENDING_TIMEOUT_US
from stepout.services.throttling import ACCOUNT_LIMIT
from tests.web.conftest import PASSWORD, Authenticator, FakeClock, Web, authenticator
from tests.web.pages_support import browser, csrf_of, login

CODES = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")
SECRET = re.compile(r'<p class="secret" id="mfa-secret">([A-Z2-7 ]+)</p>')
QR = re.compile(r'<img class="mfa-qr" src="([^"]+)"')


def password_step(
    c: TestClient, username: str, password: str = PASSWORD, *, set_up: bool = True
) -> Response:
    """The sign-in form. An account of the fixtures' practices has set up its factor first
    (unless not `set_up`)."""
    app = c.app.state  # type: ignore[attr-defined]
    if set_up and any(username in made.tokens for made in app.practices.values()):
        authenticator(app.stepout, app.practices, username)
    form = c.get("/login")
    return c.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )


def post_code(c: TestClient, code: str, page: str = "/login/code") -> Response:
    form = c.get(page)
    assert form.status_code == 200, form.text
    return c.post(page, data={"code": code, "csrf": csrf_of(form.text)}, follow_redirects=False)


def new_user(web: Web, username: str = "a-new", role: str = "therapist") -> None:
    web.state.accounts.add_user(username, "pa", role, PASSWORD)


def enrol_through_pages(web: Web, c: TestClient, username: str) -> tuple[str, list[str]]:
    """Sign in as a user with no factor and set it up: (secret, recovery codes)."""
    r = password_step(c, username)
    assert r.headers["location"] == "/login/enrol"
    page = c.get("/login/enrol")
    found = SECRET.search(page.text)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    code = pyotp.TOTP(secret).at(web.state.now() // 1_000_000)
    r = c.post("/login/enrol", data={"code": code, "csrf": csrf_of(page.text)})
    assert r.status_code == 200, r.text
    return secret, CODES.findall(r.text)


def app_of(web: Web, username: str) -> Authenticator:
    return authenticator(web.state, web.practices, username)


def wrong(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def test_a_new_account_enrols_with_a_qr_code_then_gets_ten_recovery_codes(web: Web) -> None:
    new_user(web)
    c = web.client
    r = password_step(c, "a-new")
    assert r.status_code == 303
    assert r.headers["location"] == "/login/enrol"
    assert "stepout_session" not in c.cookies
    page = c.get("/login/enrol")
    assert page.status_code == 200
    secret_text = SECRET.search(page.text)
    qr = QR.search(page.text)
    assert secret_text is not None
    assert qr is not None
    secret = secret_text.group(1).replace(" ", "")
    assert len(secret) == 32  # 160 bits, base32
    # The QR code is the otpauth:// URI of the secret shown as text, nothing else.
    uri = pyotp.TOTP(secret).provisioning_uri(name="a-new", issuer_name="Stepout")
    assert uri.startswith("otpauth://totp/Stepout:a-new?secret=")
    expected = segno.make(uri, error="m").svg_data_uri(
        scale=5, border=2, dark="#16323f", light="#ffffff"
    )
    assert qr.group(1) == expected.replace("&", "&amp;")
    assert 'alt="QR code' in page.text
    # A reload shows the same secret (it may have been scanned already).
    again = SECRET.search(c.get("/login/enrol").text)
    assert again is not None
    assert again.group(1).replace(" ", "") == secret

    code = pyotp.TOTP(secret).at(web.state.now() // 1_000_000)
    bad = c.post("/login/enrol", data={"code": wrong(code), "csrf": csrf_of(page.text)})
    assert bad.status_code == 401
    assert "That code does not match" in bad.text
    assert "stepout_session" not in c.cookies

    done = c.post("/login/enrol", data={"code": code, "csrf": csrf_of(page.text)})
    assert done.status_code == 200
    codes = CODES.findall(done.text)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", x) for x in codes)
    assert "shown only" in done.text
    assert "stepout_session" in c.cookies
    assert c.get("/console").status_code == 200
    # The enrolment is over: its page is gone, and the codes are never shown again.
    assert c.get("/login/enrol", follow_redirects=False).headers["location"] == "/login"
    assert c.get("/console").text.count(codes[0]) == 0


def test_the_codes_are_stored_hashed_and_the_secret_sealed(web: Web) -> None:
    new_user(web)
    secret, codes = enrol_through_pages(web, web.client, "a-new")
    with web.state.db.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for query in ("SELECT * FROM mfa_factors", "SELECT * FROM recovery_codes")
            for row in conn.execute(text(query))
        )
    assert secret not in dump
    assert not any(code in dump or code.replace("-", "") in dump for code in codes)


def test_an_enrolled_account_needs_its_code_and_a_wrong_one_is_refused(web: Web) -> None:
    c = web.client
    r = password_step(c, "a-ther")
    assert r.headers["location"] == "/login/code"
    assert "Path=/login" in r.headers["set-cookie"]  # the pending cookie goes nowhere else
    app: Authenticator = app_of(web, "a-ther")
    code = app.code(web.state.now)
    refused = post_code(c, wrong(code))
    assert refused.status_code == 401
    assert "That code is not right" in refused.text
    assert "stepout_session" not in c.cookies
    ok = post_code(c, code)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/console"
    assert c.get("/console").status_code == 200


def test_a_code_is_not_accepted_twice(web: Web) -> None:
    c = web.client
    app = app_of(web, "a-ther")
    code = app.code(web.state.now)
    password_step(c, "a-ther")
    assert post_code(c, code).status_code == 303
    other = browser(web)  # someone who saw the code over the shoulder
    password_step(other, "a-ther")
    replayed = post_code(other, code)
    assert replayed.status_code == 401
    assert "stepout_session" not in other.cookies
    assert post_code(other, app.code(web.state.now)).status_code == 303  # a fresh one works


def test_a_code_of_an_earlier_step_than_the_last_used_is_refused(web: Web) -> None:
    app = app_of(web, "a-ther")
    secret = app.secret
    step = mfa.step_of(web.state.now())
    totp = pyotp.TOTP(secret)
    later, earlier = totp.generate_otp(step + 1), totp.generate_otp(step)
    c = web.client
    password_step(c, "a-ther")
    assert post_code(c, later).status_code == 303
    other = browser(web)
    password_step(other, "a-ther")
    assert post_code(other, earlier).status_code == 401


def test_a_recovery_code_works_once(web: Web) -> None:
    new_user(web)
    c = web.client
    _, codes = enrol_through_pages(web, c, "a-new")
    c.post("/logout", data={"csrf": csrf_of(c.get("/console").text)})

    other = browser(web)
    password_step(other, "a-new")
    r = post_code(other, codes[0].upper().replace("-", " "))  # as typed from paper
    assert r.status_code == 303
    assert other.get("/console").status_code == 200

    third = browser(web)
    password_step(third, "a-new")
    again = post_code(third, codes[0])
    assert again.status_code == 401
    assert post_code(third, codes[1]).status_code == 303


def test_another_accounts_recovery_code_does_not_work(web: Web) -> None:
    new_user(web, "a-new")
    new_user(web, "a-new2")
    _, codes = enrol_through_pages(web, browser(web), "a-new")
    c = browser(web)
    password_step(c, "a-new2")
    c.get("/login/enrol")  # a-new2 has no factor yet: the code page is not theirs
    assert c.get("/login/code", follow_redirects=False).headers["location"] == "/login/enrol"
    d = browser(web)
    password_step(d, "a-ther")
    assert post_code(d, codes[0]).status_code == 401


@pytest.mark.parametrize("path", ["/console", "/supervise", "/admin", "/"])
def test_a_half_signed_in_browser_reaches_no_page(web: Web, path: str) -> None:
    for username in ("a-ther", "a-admin"):
        c = browser(web)
        r = password_step(c, username)
        assert r.status_code == 303
        pending = c.cookies["stepout_mfa"]
        got = c.get(path, follow_redirects=False)
        assert got.status_code == 303
        assert got.headers["location"].startswith("/login")
        # Nor as a session cookie: a pending sign-in is no browser session.
        c.cookies.set("stepout_session", pending)
        got = c.get(path, follow_redirects=False)
        assert got.status_code == 303
        assert got.headers["location"].startswith("/login")


def test_the_code_form_needs_its_csrf_token(web: Web) -> None:
    c = web.client
    password_step(c, "a-ther")
    code = app_of(web, "a-ther").code(web.state.now)
    r = c.post("/login/code", data={"code": code, "csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert "stepout_session" not in c.cookies


def test_the_code_pages_without_a_pending_sign_in_send_to_the_login(web: Web) -> None:
    c = web.client
    for page in ("/login/code", "/login/enrol"):
        assert c.get(page, follow_redirects=False).headers["location"] == "/login"
        r = c.post(page, data={"code": "123456", "csrf": "x"}, follow_redirects=False)
        assert r.status_code == 401
        assert "Please sign in again" in r.text


def test_an_enrolled_account_cannot_enrol_again_without_a_reset(web: Web) -> None:
    c = web.client
    password_step(c, "a-ther")
    r = c.get("/login/enrol", follow_redirects=False)
    assert r.headers["location"] == "/login/code"
    form = c.get("/login/code")
    r = c.post(
        "/login/enrol",
        data={"code": "123456", "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/login/code"
    assert "stepout_session" not in c.cookies
    assert "mfa-secret" not in c.get("/login/code").text


def test_wrong_codes_are_throttled_and_end_the_pending_sign_in(web: Web) -> None:
    c = web.client
    password_step(c, "a-ther")
    good = app_of(web, "a-ther").code(web.state.now)
    for _ in range(ACCOUNT_LIMIT):
        assert post_code(c, wrong(good)).status_code == 401
    form = c.get("/login/code")
    r = c.post("/login/code", data={"code": good, "csrf": csrf_of(form.text)})
    assert r.status_code == 429
    assert "Too many failed attempts to sign in" in r.text
    assert "stepout_session" not in c.cookies
    # The password step is refused too, with the message an unknown account gets.
    refused = password_step(browser(web), "a-ther")
    assert refused.status_code == 429
    for _ in range(ACCOUNT_LIMIT):
        password_step(browser(web), "nobody-here", "wrong-password-000")
    unknown = password_step(browser(web), "nobody-here", "wrong-password-000")
    assert unknown.status_code == 429
    message = re.search(r'id="login-error">([^<]+)<', refused.text)
    assert message is not None
    assert message.group(1) in unknown.text


def test_mfa_reset_ends_sessions_and_the_next_sign_in_enrols(web: Web) -> None:
    c = web.client
    login(c, "a-ther")
    assert web.state.accounts.reset_mfa("a-ther") is True
    assert c.get("/console", follow_redirects=False).status_code == 303
    r = password_step(browser(web), "a-ther")
    assert r.headers["location"] == "/login/enrol"


def test_a_pending_sign_in_lasts_15_minutes(web_clocked: Web, clock: FakeClock) -> None:
    web = web_clocked
    c = web.client
    password_step(c, "a-ther")
    form = c.get("/login/code")
    clock.advance(seconds=PENDING_TIMEOUT_US / 1_000_000 + 1)
    code = app_of(web, "a-ther").code(web.state.now)
    r = c.post("/login/code", data={"code": code, "csrf": csrf_of(form.text)})
    assert r.status_code == 401
    assert "Please sign in again" in r.text
    assert "stepout_session" not in c.cookies


def test_the_demo_waiver_signs_in_with_a_password_and_says_so(web: Web) -> None:
    c = web.client
    assert "MFA) is waived" not in c.get("/login").text
    web.state.accounts.signin.waive_mfa("pb")
    page = c.get("/login")
    assert "Multi-factor sign-in (MFA) is waived for the demo practice" in page.text
    assert "Synthetic practice B" in page.text
    r = password_step(c, "b-ther", set_up=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console"
    console = c.get("/console")
    assert console.status_code == 200
    assert "Multi-factor sign-in (MFA) is waived for this demo practice" in console.text
    # Another practice's staff still need their code, and their pages say nothing of it.
    other = browser(web)
    assert password_step(other, "a-ther").headers["location"] == "/login/code"
    login(other, "a-super")
    assert "is waived" not in other.get("/supervise").text
