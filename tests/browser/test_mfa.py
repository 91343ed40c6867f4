"""Setting up and using the second factor in a real browser on a phone: the QR code renders,
the key can be read off the page, the recovery codes are shown once, and the pages of these
steps pass axe (WCAG 2 A/AA) with large enough targets. Accounts are synthetic."""

from typing import Any

import pyotp
import pytest

from stepout.services import mfa
from tests.browser.conftest import PHONE, Pages, Server
from tests.browser.test_accessibility import SMALL_TARGETS, violations
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.browser


def password(page: Any, server: Server, username: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_a_new_account_sets_up_its_code_on_a_phone_and_then_signs_in_with_it(
    server: Server, pages: Pages
) -> None:
    server.state.accounts.add_user("a-new", "pa", "therapist", PASSWORD)
    phone = pages.open({**PHONE, "bypass_csp": True})
    password(phone, server, "a-new")
    assert phone.url.endswith("/login/enrol")
    qr = phone.get_by_role("img", name="QR code that adds your Stepout sign-in")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    checked = {"enrol": violations(phone)}
    small = {"enrol": phone.evaluate(SMALL_TARGETS)}

    secret = phone.locator("#mfa-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    step = mfa.step_of(server.state.now())
    phone.get_by_label("The 6-digit code the app shows now").fill(totp.generate_otp(step))
    phone.get_by_role("button", name="Confirm").click()
    phone.wait_for_load_state()
    codes = phone.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    checked["recovery"] = violations(phone)
    phone.get_by_role("link", name="I have kept them: continue").click()
    phone.wait_for_load_state()
    assert phone.url.endswith("/console")
    phone.get_by_role("button", name="Sign out").click()
    phone.wait_for_load_state()

    password(phone, server, "a-new")
    assert phone.url.endswith("/login/code")
    checked["code"] = violations(phone)
    small["code"] = phone.evaluate(SMALL_TARGETS)
    phone.get_by_label("Code").fill(totp.generate_otp(step + 1))
    phone.get_by_role("button", name="Continue").click()
    phone.wait_for_load_state()
    assert phone.url.endswith("/console")

    assert {name: found for name, found in checked.items() if found} == {}
    assert {name: found for name, found in small.items() if found} == {}


def test_the_demo_practice_says_on_screen_that_mfa_is_waived(server: Server, pages: Pages) -> None:
    server.state.accounts.signin.waive_mfa("pb")
    phone = pages.open(PHONE)
    phone.goto(f"{server.url}/login")
    notice = phone.locator("#mfa-waived")
    assert "waived for the demo practice" in notice.inner_text()
    password(phone, server, "b-ther")
    assert phone.url.endswith("/console")
    assert "waived for this demo practice" in phone.locator("#mfa-waived").inner_text()
