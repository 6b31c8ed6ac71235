"""Every admin form ties a refused value's message to its field: `aria-invalid`, an
`aria-describedby` naming the element that holds the message, and `autofocus` on the first
field to fix (focus lands there without JavaScript). The summary editor's macros, reused."""

from __future__ import annotations

import lxml.html
import pytest
from test_web_support import csrf

from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import subscribers as api
from newsletter.store.engine import transaction

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()


def tied(
    page: str, selector: str, error_id: str, words: str, group: bool = False
) -> lxml.html.HtmlElement:
    """The field at `selector`, checked to be invalid (a `group` of choices only described)
    and described by `error_id`, whose text holds `words`; the field is returned."""
    tree = lxml.html.fromstring(page)
    [field] = tree.cssselect(selector)
    assert group or field.get("aria-invalid") == "true", lxml.html.tostring(field)
    assert error_id in (field.get("aria-describedby") or "").split(), lxml.html.tostring(field)
    message = tree.get_element_by_id(error_id)
    assert words in message.text_content(), message.text_content()
    return field


def focused(page: str) -> list[str]:
    """The ids (or names) of the elements with `autofocus`, in document order."""
    tree = lxml.html.fromstring(page)
    return [el.get("id") or el.get("name") for el in tree.cssselect("[autofocus]")]


@pytest.fixture
def subscriber_id(engine, web_settings) -> int:
    with transaction(engine) as session:
        return api.add_subscriber(session, web_settings, TAXONOMY, "ana@example.net").id


def test_login(client):
    data = {"name": "admin", "password": "wrong", "csrf_token": csrf(client, "/admin/login")}
    page = client.post("/admin/login", data=data)
    assert page.status_code == 401
    tied(page.text, "#password", "password-error", "Wrong name or password.")
    assert focused(page.text) == ["password"]
    assert 'aria-describedby="password-error"' in page.text.split('id="name"')[1].split(">")[0]


def test_add_a_subscriber(admin, subscriber_id):
    token = csrf(admin, "/admin/subscribers")
    taken = admin.post("/admin/subscribers", data={"email": "ana@example.net", "csrf_token": token})
    assert taken.status_code == 400
    tied(taken.text, "#new-email", "new-email-error", "already subscribed")
    assert focused(taken.text) == ["new-email"]
    bad = admin.post("/admin/subscribers", data={"email": "not an address", "csrf_token": token})
    tied(bad.text, "#new-email", "new-email-error", "invalid email address")
    status = admin.post(
        "/admin/subscribers",
        data={"email": "bo@example.net", "status": "bounced", "csrf_token": token},
    )
    tied(status.text, "#new-status", "new-status-error", "active or pending")
    topics = admin.post(
        "/admin/subscribers",
        data={"email": "bo@example.net", "topic_mode": "some", "csrf_token": token},
    )
    tied(topics.text, "fieldset.topic-picker", "topics-error", "at least one topic", group=True)
    assert "<details open>" in topics.text  # the topics are shown, not folded away
    assert focused(topics.text) == ["topic_mode"]  # the "only these topics" choice


def test_bulk_change(admin, subscriber_id):
    token = csrf(admin, "/admin/subscribers")
    data = {"action": "status", "value": "gone", "csrf_token": token}
    page = admin.post("/admin/subscribers/bulk", data=data)
    assert page.status_code == 400
    tied(page.text, "#bulk-status", "bulk-status-error", "unknown status 'gone'")
    assert focused(page.text) == ["bulk-status"]


def test_edit_a_subscriber(admin, subscriber_id):
    url = f"/admin/subscribers/{subscriber_id}"
    token = csrf(admin, url)
    long_name = admin.post(url, data={"name": "x" * 300, "csrf_token": token})
    assert long_name.status_code == 400
    tied(long_name.text, "#edit-name", "name-error", "name")
    assert focused(long_name.text) == ["edit-name"]
    no_topics = admin.post(url, data={"topic_mode": "some", "csrf_token": token})
    tied(no_topics.text, "fieldset.topic-picker", "topics-error", "one topic", group=True)
    assert focused(no_topics.text) == ["topic_mode"]
    address = admin.post(f"{url}/address", data={"new_email": "nope", "csrf_token": token})
    field = tied(address.text, "#new-email", "email-error", "invalid email address")
    assert field.get("aria-describedby") == "email-error new-email-hint"  # the hint stays
    forget = admin.post(f"{url}/forget", data={"csrf_token": token})
    tied(forget.text, "input[name=sure]", "sure-error", "Tick this box")
    assert focused(forget.text) == ["sure"]
    status = admin.post(f"{url}/status", data={"status": "gone", "csrf_token": token})
    tied(status.text, "#status", "status-error", "Choose one of the statuses")


def test_queue_a_send(admin, web_settings, tmp_path):
    web_settings._config_path = tmp_path / "config.toml"  # a queued job names the config
    token = csrf(admin, "/admin/schedule")
    past = admin.post(
        "/admin/schedule/add",
        data={"month": "2025-01", "at": "2001-01-05T09:30", "csrf_token": token},
    )
    assert past.status_code == 400
    tied(past.text, "#at", "at-error", "is in the past")
    assert focused(past.text) == ["at"]
    no_month = admin.post(
        "/admin/schedule/add",
        data={"month": "2031-07", "at": "2099-01-05T09:30", "csrf_token": token},
    )
    tied(no_month.text, "#month", "month-error", "2031-07")


def test_import_and_test_send_and_preview(admin):
    token = csrf(admin, "/admin/import")
    page = admin.post("/admin/import", data={"csrf_token": token})
    assert page.status_code == 400
    tied(page.text, "#file", "file-error", "Choose a CSV file")
    token = csrf(admin, "/admin/issues/2025-01")
    test = admin.post(
        "/admin/issues/2025-01/test", data={"addresses": "not-an-address", "csrf_token": token}
    )
    tied(test.text, "#addresses", "addresses-error", "not-an-address")
    assert focused(test.text) == ["addresses"]
    preview = admin.get("/admin/issues/2025-01/preview?subscriber=nobody@example.net")
    tied(preview.text, "#subscriber", "subscriber-error", "No subscriber")


def test_the_summary_editor_focuses_the_first_field_to_fix(admin):
    data = {
        "new_slug": "a-summary",
        "title": "",
        "research_type": "",
        "summary": "",
        "implications": "",
        "version": "",
        "csrf_token": csrf(admin, "/admin/issues/2025-02"),
    }
    page = admin.post("/admin/issues/2025-02/summaries", data=data)
    assert page.status_code == 422
    tied(page.text, "#title", "title-error", "")
    assert focused(page.text)[0] == "title"
    # Only topics wrong: the first topic box takes focus (a fieldset cannot).
    data.update(title="A title", research_type="Meta-analysis", summary="a", implications="b")
    page = admin.post("/admin/issues/2025-02/summaries", data=data)
    tied(page.text, "fieldset.topics-field", "topics-error", "")
    assert focused(page.text) == ["topics"]
