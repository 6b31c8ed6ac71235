"""The JSON admin API, its OpenAPI schema, and fuzzing of the public forms and the API."""

from __future__ import annotations

import http
import string
import urllib.parse

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from test_web_support import csrf

from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()
AUTH = {"Authorization": "Bearer test-api-token"}


@pytest.fixture
def api_client(client):
    client.headers.update(AUTH)
    return client


def test_schema_describes_the_api_and_its_bearer_token(client):
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    assert "/api/issues" in paths
    assert "/api/issues/{month}/send" in paths
    assert "/api/subscribers/import" in paths
    assert not any(path.startswith(("/subscribe", "/admin", "/u/")) for path in paths)
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert paths["/api/issues"]["get"]["security"] == [{"HTTPBearer": []}]


def test_token_required(client, monkeypatch):
    assert client.get("/api/issues").status_code == 401
    wrong = client.get("/api/issues", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    monkeypatch.delenv("NEWSLETTER_API_TOKEN")
    assert client.get("/api/issues", headers=AUTH).status_code == 503


def test_issues_preview_test_plan_send_progress(api_client, engine, web_settings, outbox, app):
    with session_factory(engine)() as session:
        api.add_subscriber(session, web_settings, TAXONOMY, "a@example.com", topics="empathy")
        api.add_subscriber(session, web_settings, TAXONOMY, "b@example.com")
        session.commit()
    issues = api_client.get("/api/issues").json()
    assert [i["month"] for i in issues] == ["2025-02", "2025-01"]
    one = api_client.get("/api/issues/2025-01").json()
    assert len(one["summaries"]) == 3 and one["campaign_status"] == "not sent"
    assert api_client.get("/api/issues/2040-01").status_code == 404
    preview = api_client.post(
        "/api/issues/2025-01/preview", json={"topics": ["Anxiety Disorders"]}
    ).json()
    assert preview["variant"].endswith(";topics") and preview["size"] > 1000
    assert "PRACTICE IMPLICATIONS" in preview["text"]
    as_b = api_client.post("/api/issues/2025-01/preview", json={"subscriber": "b@example.com"})
    assert as_b.status_code == 200
    unknown = api_client.post("/api/issues/2025-01/preview", json={"topics": ["astrology"]})
    assert unknown.status_code == 400 and "astrology" in unknown.json()["detail"]
    test = api_client.post("/api/issues/2025-01/test", json={"to": ["t@example.com"]})
    assert test.status_code == 200 and outbox.outbox[-1].recipient == "t@example.com"
    plan = api_client.get("/api/issues/2025-01/plan").json()
    assert plan["audience"] == 2 and plan["to_send"] == 1 and plan["variant_count"] == 1
    refused = api_client.post("/api/issues/2025-01/send", json={"confirm": False})
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"][-1] == "confirm"
    started = api_client.post("/api/issues/2025-01/send", json={"confirm": True})
    assert started.status_code == 202
    app.state.ctx.sending.wait("2025-01", timeout=30)
    progress = api_client.get("/api/issues/2025-01/progress").json()
    assert progress["counts"] == {"sent": 1, "skipped": 1}
    assert progress["campaign_status"] == "done" and not progress["running"]
    bad_list = api_client.post("/api/issues/2025-02/send", json={"confirm": True, "lists": ["x"]})
    assert bad_list.status_code == 400 and "unknown list 'x'" in bad_list.json()["detail"]


def test_subscribers_crud_and_import(api_client):
    created = api_client.post(
        "/api/subscribers", json={"email": "Ana@Example.com", "topics": ["empathy"]}
    )
    assert created.status_code == 201
    ana = created.json()
    assert ana["email"] == "Ana@example.com" and ana["topics"] == ["empathy"]
    twice = api_client.post("/api/subscribers", json={"email": "ana@example.com"})
    assert twice.status_code == 409 and "already subscribed" in twice.json()["detail"]
    assert api_client.post("/api/subscribers", json={"email": "nope"}).status_code == 400
    listed = api_client.get("/api/subscribers", params={"topic": "empathy"}).json()
    assert [s["email"] for s in listed] == ["Ana@example.com"]
    assert api_client.get("/api/subscribers", params={"status": "x"}).status_code == 422
    patched = api_client.patch(
        f"/api/subscribers/{ana['id']}", json={"status": "unsubscribed", "topics": ["*"]}
    ).json()
    assert patched["status"] == "unsubscribed" and patched["topics"] == "*"
    detail = api_client.get(f"/api/subscribers/{ana['id']}").json()
    assert detail["deliveries"] == []
    assert api_client.get("/api/subscribers/999999").status_code == 404
    report = api_client.post(
        "/api/subscribers/import",
        json={"csv": "email,topics\nb@example.com,empathy\nc@example.com,astrology\n"},
    )
    assert report.status_code == 400
    assert report.json()["rejected"][0]["line"] == 3
    report = api_client.post(
        "/api/subscribers/import",
        json={
            "csv": "email,topics\nb@example.com,empathy\nc@example.com,astrology\n",
            "skip_invalid": True,
        },
    ).json()
    assert report["added"] == 1 and len(report["rejected"]) == 1


# --- fuzzing: no 5xx for any input ---------------------------------------------------------

FUZZ = hypothesis_settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
texts = st.text(max_size=60)
tokens = st.one_of(
    texts, st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=200)
)


@FUZZ
@given(
    email=texts,
    name=texts,
    mode=st.sampled_from(["all", "some", "", "x"]),
    topics=st.lists(st.one_of(texts, st.sampled_from(["empathy", "training"])), max_size=4),
    lists=st.lists(texts, max_size=3),
    with_csrf=st.booleans(),
)
def test_fuzz_subscribe_form(client, email, name, mode, topics, lists, with_csrf):
    client.app.state.ctx.limits.subscribe_ip.reset("testclient")
    token = csrf(client, "/subscribe") if with_csrf else "x"
    data = {"email": email, "name": name, "topic_mode": mode, "topics": topics, "lists": lists}
    response = client.post("/subscribe", data={**data, "csrf_token": token})
    assert response.status_code < 500


@FUZZ
@given(token=tokens, drop=st.one_of(st.none(), texts), action=texts, topic=texts)
def test_fuzz_token_pages(client, token, drop, action, topic):
    segment = urllib.parse.quote(token, safe="") or "x"
    for quoted in (f"/confirm/{segment}", f"/preferences/{segment}", f"/u/{segment}", "/link"):
        params = {"drop": drop} if drop is not None else None
        assert client.get(quoted, params=params).status_code < 500
        body = {"List-Unsubscribe": topic, "action": action, "topic": topic, "email": topic}
        assert client.post(quoted, data=body).status_code < 500


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(
    path=st.sampled_from(
        [
            ("post", "/api/issues/2025-01/preview"),
            ("post", "/api/issues/2025-01/test"),
            ("post", "/api/issues/{month}/preview"),
            ("post", "/api/subscribers"),
            ("patch", "/api/subscribers/1"),
            ("post", "/api/subscribers/import"),
            ("get", "/api/subscribers"),
            ("get", "/api/issues/{month}"),
            ("get", "/api/issues/{month}/plan"),
        ]
    ),
    month=texts,
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "email": texts,
                "topics": st.one_of(st.none(), st.lists(texts, max_size=3)),
                "lists": st.one_of(st.none(), st.lists(texts, max_size=2)),
                "status": texts,
                "name": texts,
                "subscriber": texts,
                "to": st.lists(texts, max_size=2),
                "csv": texts,
            },
        ),
    ),
    query=st.dictionaries(st.sampled_from(["status", "topic", "list", "search", "limit"]), texts),
)
def test_fuzz_admin_api(api_client, path, month, body, query):
    method, url = path
    url = url.replace("{month}", urllib.parse.quote(month, safe="") or "x")
    if method == "get":
        response = api_client.get(url, params=query)
    else:
        response = api_client.request(method.upper(), url, json=body)
    assert response.status_code < 500, response.text


def test_api_refuses_a_name_with_a_line_break(api_client):
    created = api_client.post(
        "/api/subscribers", json={"email": "bob@example.com", "name": "Bob\nBcc: x@evil.example"}
    )
    # Refused by the schema's pattern for names (what `clean_name` refuses).
    assert created.status_code == 422
    assert created.json()["errors"][0]["loc"] == ["body", "name"]
    ok = api_client.post("/api/subscribers", json={"email": "bob@example.com", "name": "Bob"})
    assert ok.status_code == 201
    patched = api_client.patch(f"/api/subscribers/{ok.json()['id']}", json={"name": "B\r\nX: 1"})
    assert patched.status_code == 422
    assert api_client.get(f"/api/subscribers/{ok.json()['id']}").json()["name"] == "Bob"


# --- the contract: token first, problem details, enums, methods ----------------------------


def test_the_token_is_checked_before_the_body_is_read(client):
    for body in ("{not json", '{"email": 1}', "[]"):
        response = client.post(
            "/api/subscribers", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, body
        assert response.headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer nope", "Content-Type": "application/json"}
    assert client.post("/api/subscribers", content="{", headers=wrong).status_code == 401


def test_errors_are_problem_details(api_client):
    invalid = api_client.post("/api/subscribers", json={"email": 3})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    body = invalid.json()
    assert body["type"] == "about:blank" and body["status"] == 422
    assert body["title"] == http.HTTPStatus(422).phrase
    assert body["errors"][0]["loc"] == ["body", "email"] and body["errors"][0]["type"]
    missing = api_client.get("/api/subscribers/5")
    assert missing.status_code == 404
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such subscriber",
    }
    unauthorized = api_client.get("/api/issues", headers={"Authorization": "Bearer x"})
    assert unauthorized.json()["title"] == "Unauthorized"


def test_huge_ids_are_not_found(api_client):
    for subscriber_id in ("99999999999999999999", str(2**63), "0"):
        assert api_client.get(f"/api/subscribers/{subscriber_id}").status_code == 404
        patched = api_client.patch(f"/api/subscribers/{subscriber_id}", json={"name": "x"})
        assert patched.status_code == 404


def test_undeclared_methods_get_405_with_every_allowed_method(api_client):
    # PATCH /subscribers/import once matched PATCH /subscribers/{id} and answered 422.
    patch = api_client.patch("/api/subscribers/import", json={})
    assert patch.status_code == 405 and patch.headers["allow"] == "POST"
    put = api_client.put("/api/subscribers", json={})
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST"
    assert put.json()["title"] == "Method Not Allowed"
    one = api_client.delete("/api/subscribers/1")
    assert one.headers["allow"] == "GET, PATCH"


def test_schema_names_the_topics_and_lists_and_every_status(client, web_settings):
    schema = client.get("/api/openapi.json").json()
    models = schema["components"]["schemas"]
    topics = models["SubscriberIn"]["properties"]["topics"]["anyOf"][0]["items"]["enum"]
    assert {"*", "empathy", "Empathy", "anxiety-disorders"} <= set(topics)
    assert set(topics) == {"*"} | {t.slug for t in TAXONOMY.topics} | {
        t.label for t in TAXONOMY.topics
    }
    lists = models["SendIn"]["properties"]["lists"]["anyOf"][0]["items"]["enum"]
    assert lists == [spec.slug for spec in web_settings.list_specs()]
    assert models["SendIn"]["properties"]["confirm"]["const"] is True
    statuses = models["SubscriberPatch"]["properties"]["status"]["anyOf"][0]["enum"]
    assert set(statuses) == {"active", "pending", "unsubscribed", "bounced", "complained"}
    parameters = {p["name"]: p for p in schema["paths"]["/api/subscribers"]["get"]["parameters"]}
    assert "empathy" in parameters["topic"]["schema"]["anyOf"][0]["enum"]
    assert parameters["list"]["schema"]["anyOf"][0]["enum"] == lists
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"401", "422", "503"} <= documented, (method, path)
            problem = operation["responses"]["401"]["content"]["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "404" in schema["paths"]["/api/subscribers/{subscriber_id}"]["patch"]["responses"]
    assert "409" in schema["paths"]["/api/subscribers"]["post"]["responses"]
    assert "409" in schema["paths"]["/api/issues/{month}/send"]["post"]["responses"]


def test_the_api_takes_exactly_the_topics_its_schema_names(api_client):
    # An alias or another spelling the CLI would take is not in the enum: refused, like any
    # value outside the schema.
    ok = api_client.post("/api/subscribers", json={"email": "a@example.com", "topics": ["Empathy"]})
    assert ok.status_code == 201 and ok.json()["topics"] == ["empathy"]
    other = api_client.post(
        "/api/subscribers", json={"email": "b@example.com", "topics": ["EMPATHY"]}
    )
    assert other.status_code == 400
    every = api_client.patch(f"/api/subscribers/{ok.json()['id']}", json={"topics": ["*"]})
    assert every.json()["topics"] == "*"


def test_a_filter_is_one_value_from_the_schema(api_client):
    # FastAPI would keep the last of a repeated parameter and ignore the rest, and an empty
    # `list=` was read as "no filter": both are requests the schema does not allow.
    repeated = api_client.get("/api/subscribers?list=nope&list=digest")
    assert repeated.status_code == 422 and repeated.json()["type"]
    assert "'list'" in repeated.json()["detail"]
    for query in ("list=", "topic=", "list=no-such-list"):
        assert api_client.get(f"/api/subscribers?{query}").status_code == 400, query
    assert api_client.get("/api/subscribers?list=digest").status_code == 200
