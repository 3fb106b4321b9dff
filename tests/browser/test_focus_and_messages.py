"""Where focus goes after an action, the focus ring, and how confirmations are shown
(issue 15, items 1 to 3), in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from credits import services
from customers.models import User
from notifications.models import Notification
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def admin(db):
    return User.objects.create_superuser(
        email="ada@example.com", password=PASSWORD, first_name="Ada", last_name="Admin"
    )


@pytest.fixture
def maria(db):
    maria = UserFactory(first_name="Maria", last_name="Garcia", email="maria@example.com")
    services.add_credits(maria, 20, memo="Welcome bonus")
    return maria


def _adjust_in_dialog(page, amount: str, memo: str):
    page.get_by_role("button", name="Adjust balance").click()
    dialog = page.get_by_role("dialog", name="Adjust balance")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Amount").fill(amount)
    dialog.get_by_label("Memo").fill(memo)
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()


# --- 1. Focus after an action ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_after_an_adjustment_focus_is_back_on_adjust_balance_and_the_row_is_highlighted(
    page, login, admin, maria
):
    login(admin.email, PASSWORD)
    page.goto(maria.get_absolute_url())
    _adjust_in_dialog(page, "10", "Event credits")
    balance = page.get_by_role("region", name="Credit balance")
    expect(balance.get_by_test_id("balance")).to_have_text("30 credits")
    # The section was replaced; focus is on its new "Adjust balance", not on <body>.
    adjust = page.get_by_role("button", name="Adjust balance")
    expect(adjust).to_be_focused()
    # The new row stands out for a moment, and only the new row.
    recent = page.get_by_role("region", name="Recent transactions")
    new_row = recent.get_by_role("row").filter(has_text="Event credits")
    expect(new_row).to_have_class(re.compile(r"\bjust-changed\b"))
    old_row = recent.get_by_role("row").filter(has_text="Welcome bonus")
    expect(old_row).not_to_have_class(re.compile(r"\bjust-changed\b"))
    expect(new_row).not_to_have_class(re.compile(r"\bjust-changed\b"), timeout=6000)
    # The next Tab goes on from the button, into the section, not back to the page's top.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "More actions"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_after_mark_as_read_focus_goes_to_the_next_one_and_the_item_is_highlighted(page, login):
    member = UserFactory(first_name="Lena", last_name="Novak")
    for amount in (1, 2, 3):
        services.add_credits(member, amount)
    assert Notification.objects.filter(recipient=member).count() == 3
    login(member.email, PASSWORD)
    page.goto("/notifications/")
    buttons = page.get_by_role("button", name=re.compile("^Mark as read “"))
    expect(buttons).to_have_count(3)
    buttons.first.focus()
    page.keyboard.press("Enter")
    expect(buttons).to_have_count(2)
    item = page.get_by_role("listitem").first
    expect(item).to_have_class(re.compile(r"\bjust-changed\b"))
    # Focus is on the next "Mark as read", so Enter again reads the next one.
    expect(buttons.first).to_be_focused()
    page.keyboard.press("Enter")
    expect(buttons).to_have_count(1)
    # Enter only once focus has moved (the swap and the move are two steps).
    expect(buttons.first).to_be_focused()
    page.keyboard.press("Enter")
    expect(buttons).to_have_count(0)
    # None left after it: focus stays on the notification just read, not on <body>.
    assert page.evaluate("document.activeElement.classList.contains('notification')")


# --- 2. The focus ring -------------------------------------------------------------------

_RING = """() => {
  let el = document.activeElement;
  // A field drawn inside a frame with its unit (Amount, "credits") has the ring round both.
  if (getComputedStyle(el).outlineStyle === "none" && el.closest(".input-unit")) {
    el = el.closest(".input-unit");
  }
  const style = getComputedStyle(el);
  // The ring sits outside the element (outline-offset): what is behind it is the nearest
  // ancestor with a background.
  let behind = el.parentElement, bg = "rgba(0, 0, 0, 0)";
  while (behind) {
    bg = getComputedStyle(behind).backgroundColor;
    if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") break;
    behind = behind.parentElement;
  }
  return {
    what: el.outerHTML.slice(0, 80),
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    color: style.outlineColor,
    behind: behind ? bg : "rgb(255, 255, 255)",
  };
}"""


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    light, dark = sorted([_luminance(one), _luminance(other)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _rings_while_tabbing(page, presses: int) -> list[dict]:
    """The ring of each control Tab reaches, up to `presses` of them or the page's end."""
    rings = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement === document.body"):
            break
        rings.append(page.evaluate(_RING))
    return rings


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("forced_colors", ["none", "active"])
def test_every_control_shows_a_focus_ring_of_3_to_1_also_in_forced_colors(
    page, login, admin, maria, forced_colors
):
    page.emulate_media(forced_colors=forced_colors)
    login(admin.email, PASSWORD)
    page.goto(maria.get_absolute_url())
    rings = _rings_while_tabbing(page, 30)
    assert len(rings) >= 10
    page.get_by_role("button", name="Adjust balance").click()
    expect(page.get_by_role("dialog", name="Adjust balance")).to_be_visible()
    rings += _rings_while_tabbing(page, 6)
    # A member's notifications: buttons on the unread ones' tinted background.
    services.add_credits(maria, 1)
    page.context.clear_cookies()
    login(maria.email, PASSWORD)
    page.goto("/notifications/")
    expect(page.get_by_role("button", name=re.compile("^Mark as read"))).not_to_have_count(0)
    rings += _rings_while_tabbing(page, 30)
    assert any("Mark as read" in ring["what"] for ring in rings)
    for ring in rings:
        assert ring["style"] != "none" and ring["width"] >= 2, ring
        if forced_colors == "none":
            assert _contrast(ring["color"], ring["behind"]) >= 3, ring


# --- 3. Toasts and confirmations ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_toast_waits_while_hovered_and_can_be_dismissed(page, login, admin, maria):
    page.clock.install()
    login(admin.email, PASSWORD)
    page.goto(maria.get_absolute_url())
    _adjust_in_dialog(page, "5", "First")
    toast = page.locator("#toasts .toast").filter(has_text="Added 5 credits")
    expect(toast).to_be_visible()
    toast.hover()
    page.clock.run_for(20_000)
    expect(toast).to_be_visible()  # paused while the pointer is on it
    page.mouse.move(5, 5)
    page.clock.run_for(7_000)
    expect(toast).to_have_count(0)  # and gone once it left

    _adjust_in_dialog(page, "6", "Second")
    toast = page.locator("#toasts .toast").filter(has_text="Added 6 credits")
    expect(toast).to_be_visible()
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("javascript", [False, True])
def test_a_confirmation_after_a_redirect_is_inline_at_the_top_of_main(
    browser, live_server, admin, maria, javascript
):
    context = browser.new_context(
        java_script_enabled=javascript,
        base_url=live_server.url,
        viewport={"width": 1280, "height": 860},
    )
    page = context.new_page()
    try:
        page.goto("/login/")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/customers/users/{maria.pk}/adjust/")
        page.get_by_label("Amount").fill("12")
        page.locator("#adjust-form button[type=submit]").click()
        expect(page.get_by_role("heading", name="Maria Garcia")).to_be_visible()
        message = (
            page.get_by_role("main")
            .get_by_role("status")
            .filter(has_text="Added 12 credits to Maria Garcia's balance.")
        )
        expect(message).to_be_visible()
        # In the page's flow, first in <main>, covering nothing.
        assert page.evaluate("document.querySelector('main').firstElementChild.matches('.flashes')")
        assert message.evaluate("el => getComputedStyle(el).position") == "static"
        assert page.locator("#toasts").evaluate("el => el.children.length") == 0
        if javascript:
            message.get_by_role("button", name="Dismiss").click()
            expect(message).to_have_count(0)
        else:
            assert message.get_by_role("button").count() == 0  # no button that does nothing
    finally:
        context.close()
