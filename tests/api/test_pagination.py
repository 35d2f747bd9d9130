"""Every list pages the same way: `limit` and `cursor` in, `{items, total, limit, next_cursor}` out, keyset-paged on
a stable order, so a list read while rows are added shows each row once."""

from __future__ import annotations

import base64
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.api import login_as


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://test/api/v1") as client:
        login_as(client, f"pager-{uuid.uuid4().hex[:8]}@example.org")
        yield client


def _upload(client: TestClient, project: str, names: list[str]) -> None:
    files = [("files", (name, f"report {name} {uuid.uuid4()}".encode())) for name in names]
    assert client.post(f"/projects/{project}/documents", files=files).status_code == 201


def _walk(client: TestClient, path: str, limit: int, between=None, **params) -> list[dict]:
    """Every page of a list, one after another; `between(n)` runs after page n."""
    pages = [client.get(path, params={"limit": limit, **params}).json()]
    while pages[-1]["next_cursor"]:
        if between:
            between(len(pages))
        pages.append(client.get(path, params={"limit": limit, "cursor": pages[-1]["next_cursor"], **params}).json())
    assert all(len(page["items"]) <= limit and page["limit"] == limit for page in pages)
    return pages


def test_pages_show_each_document_once_in_upload_order_while_documents_are_added(client):
    project = client.post("/projects", json={"name": "Pages"}).json()["id"]
    for batch in range(3):  # three requests: three upload times, and several documents within each
        _upload(client, project, [f"old-{batch}-{i}.txt" for i in range(3)])
    path = f"/projects/{project}/documents"
    before = [d["id"] for d in client.get(path, params={"limit": 500}).json()["items"]]

    added: list[str] = []

    def upload_more(page: int) -> None:
        _upload(client, project, [f"new-{page}.txt"])
        added.append(f"new-{page}.txt")

    pages = _walk(client, path, 2, between=upload_more)
    seen = [d["id"] for page in pages for d in page["items"]]
    assert len(seen) == len(set(seen)), "a document was shown twice"
    assert seen[: len(before)] == before, "the documents there before kept their order and none was skipped"
    names = [d["file_name"] for page in pages for d in page["items"]]
    assert names[len(before) :] == added, "documents added meanwhile come after, in upload order"
    assert pages[0]["total"] == len(before) and {page["total"] for page in pages[1:]} == {None}
    assert pages[-1]["next_cursor"] is None


def test_lists_filter_by_status_and_by_a_name_taken_literally(client):
    project = client.post("/projects", json={"name": "Filters 100%"}).json()["id"]
    client.post("/projects", json={"name": "Other"})
    _upload(client, project, ["a%b.txt", "axb.txt", "report_1.txt", "reportx1.txt"])
    path = f"/projects/{project}/documents"

    def names(**params) -> list[str]:
        return sorted(d["file_name"] for d in client.get(path, params=params).json()["items"])

    assert names(name="%") == ["a%b.txt"]  # %, _ are the user's characters, not wildcards
    assert names(name="RT_1") == ["report_1.txt"]
    assert names(status="uploaded") == sorted(["a%b.txt", "axb.txt", "report_1.txt", "reportx1.txt"])
    assert names(status="failed") == []
    assert [p["name"] for p in client.get("/projects", params={"name": "100%"}).json()["items"]] == ["Filters 100%"]
    runs = client.get(f"/projects/{project}/runs", params={"status": "queued"}).json()
    assert runs == {"items": [], "total": 0, "limit": 50, "next_cursor": None}


def test_a_cursor_that_is_not_the_lists_own_is_refused_with_a_code(client):
    project = client.post("/projects", json={"name": "Cursors"}).json()["id"]
    _upload(client, project, ["one.txt", "two.txt"])
    documents = f"/projects/{project}/documents"
    cursor = client.get(documents, params={"limit": 1}).json()["next_cursor"]
    assert client.get(documents, params={"limit": 1, "cursor": cursor}).status_code == 200

    forged = base64.urlsafe_b64encode(b"documents|>i:1~s:x").decode()  # the list's name, a key of other types
    for path, given in [("/projects", cursor), (documents, "not a cursor"), (documents, forged), (documents, "")]:
        response = client.get(path, params={"cursor": given})
        if given:
            assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor"), (path, given)
        else:
            assert response.status_code == 200  # no cursor: the first page
    assert client.get(documents).status_code == 200, "a refused cursor leaves the next request working"


def test_projects_page_oldest_first_across_pages(client):
    made = [client.post("/projects", json={"name": f"P{i}"}).json()["id"] for i in range(5)]
    pages = _walk(client, "/projects", 2)
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    assert [p["id"] for page in pages for p in page["items"]] == made
