"""Signing in and out of the pages: the pre-login CSRF token, one message for any wrong
credentials, the second step, the role's start page, a local `next` only, logout needing the
CSRF token. (The second step itself: test_pages_mfa.)"""

import pytest

from tests.web.conftest import PASSWORD, Web, authenticator
from tests.web.pages_support import csrf_of, enter_code, login


@pytest.mark.parametrize(
    ("username", "home"),
    [
        ("a-ther", "/console"),
        ("a-super", "/supervise/dashboard"),
        ("a-admin", "/supervise"),
        ("a-bill", "/supervise"),
    ],
)
def test_signing_in_goes_to_the_roles_start_page(web: Web, username: str, home: str) -> None:
    authenticator(web.state, web.practices, username)  # the account has set up its factor
    c = web.client
    form = c.get("/login")
    assert form.status_code == 200
    assert "stepout_login_csrf" in c.cookies
    r = c.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/login/code"  # the password alone opens no page
    assert "stepout_session" not in r.headers["set-cookie"]
    r = enter_code(c, username)
    assert r.headers["location"] == home
    assert "stepout_session" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"]
    assert c.get(home).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"), [("a-ther", "wrong-password-1"), ("nobody", "x")]
)
def test_wrong_credentials_get_one_generic_message_and_401(
    web: Web, username: str, password: str
) -> None:
    c = web.client
    form = c.get("/login")
    r = c.post(
        "/login", data={"username": username, "password": password, "csrf": csrf_of(form.text)}
    )
    assert r.status_code == 401
    assert "That username and password do not match an account." in r.text
    assert "stepout_session" not in c.cookies


def test_sign_in_without_the_form_token_is_refused(web: Web) -> None:
    c = web.client
    c.get("/login")
    r = c.post("/login", data={"username": "a-ther", "password": PASSWORD})
    assert r.status_code == 403
    r = c.post("/login", data={"username": "a-ther", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403
    assert "stepout_session" not in c.cookies


def test_sign_in_follows_a_local_next_only(web: Web) -> None:
    app = authenticator(web.state, web.practices, "a-admin")
    c = web.client
    for next_path, expected in (("/admin", "/admin"), ("//evil.example/x", "/supervise")):
        c.cookies.clear()
        form = c.get("/login", params={"next": next_path})
        r = c.post(
            "/login",
            data={
                "username": "a-admin",
                "password": PASSWORD,
                "csrf": csrf_of(form.text),
                "next": next_path,
            },
            follow_redirects=False,
        )
        code_page = r.headers["location"]
        assert code_page.startswith("/login/code")
        form = c.get(code_page)
        code = app.code(web.state.now)
        r = c.post(
            "/login/code",
            data={"code": code, "csrf": csrf_of(form.text), "next": next_path},
            follow_redirects=False,
        )
        assert r.headers["location"] == expected


def test_a_page_without_a_session_sends_to_the_login_with_next(web: Web) -> None:
    r = web.client.get("/console", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/console"


def test_logout_needs_the_csrf_token_and_ends_the_session(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    assert c.post("/logout", follow_redirects=False).status_code == 403
    r = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert c.get("/console", follow_redirects=False).status_code == 303


def test_the_old_cookie_is_dead_after_logout(web: Web) -> None:
    c = web.client
    csrf = login(c, "a-ther")
    cookie = c.cookies["stepout_session"]
    c.post("/logout", data={"csrf": csrf})
    c.cookies.set("stepout_session", cookie)
    assert c.get("/console", follow_redirects=False).status_code == 303


def test_pages_carry_security_headers(web: Web) -> None:
    r = web.client.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_the_root_sends_to_login_or_the_role_home(web: Web) -> None:
    c = web.client
    assert c.get("/", follow_redirects=False).headers["location"] == "/login"
    login(c, "a-super")
    assert c.get("/", follow_redirects=False).headers["location"] == "/supervise/dashboard"


def test_the_vendored_htmx_is_served_with_its_licence(web: Web) -> None:
    r = web.client.get("/static/vendor/htmx.min.js")
    assert r.status_code == 200
    assert r.text.startswith("/*! htmx 2.")
    assert "0BSD" in r.text[:400]
