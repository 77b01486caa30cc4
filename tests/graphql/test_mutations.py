"""Every mutation, through HTTP: the same rules and error codes as REST."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import PASSWORD, outbox_token, signed_in
from tests.files.samples import png
from tests.graphql.conftest import codes, gql

PAGE = "id title slug status version publishedVersion hasUnpublishedChanges content seo"


async def test_register_verify_login_and_refresh(client: httpx.AsyncClient, app: Any) -> None:
    registered = await gql(
        client,
        "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { id email emailVerified } }",
        {"e": "grace@example.com", "p": PASSWORD},
    )
    assert registered["data"]["register"]["emailVerified"] is False
    # A taken address is answered as a new one (REST does the same; the
    # owner is told by mail): the answer does not say who has an account.
    again = await gql(
        client,
        'mutation { register(email: "grace@example.com", password: "Another-Long-Secret-1") { id emailVerified } }',
    )
    assert codes(again) == []
    assert again["data"]["register"]["id"] != registered["data"]["register"]["id"]
    assert again["data"]["register"]["emailVerified"] is False
    not_an_email = await gql(
        client, f'mutation {{ register(email: "nope", password: "{PASSWORD}") {{ id }} }}'
    )
    assert codes(not_an_email) == ["validation_failed"]
    assert not_an_email["errors"][0]["extensions"]["details"][0]["path"] == "email"

    unverified = await gql(
        client,
        f'mutation {{ login(email: "grace@example.com", password: "{PASSWORD}") {{ accessToken }} }}',
    )
    assert unverified["data"]["login"]["accessToken"]  # login works; publishing needs verification

    token = await outbox_token(app, "grace@example.com")
    verified = await gql(
        client, "mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }", {"t": token}
    )
    assert verified["data"]["verifyEmail"]["emailVerified"] is True
    reused = await gql(
        client, "mutation($t: String!) { verifyEmail(token: $t) { id } }", {"t": token}
    )
    assert codes(reused) != []

    login = await gql(
        client,
        f'mutation {{ login(email: "grace@example.com", password: "{PASSWORD}") {{ accessToken refreshToken tokenType expiresIn }} }}',
    )
    pair = login["data"]["login"]
    assert pair["tokenType"] == "bearer" and pair["expiresIn"] > 0
    wrong = await gql(
        client,
        'mutation { login(email: "grace@example.com", password: "wrong-password-0") { accessToken } }',
    )
    assert codes(wrong) == ["invalid_credentials"]

    refreshed = await gql(
        client,
        "mutation($r: String!) { refresh(refreshToken: $r) { accessToken refreshToken } }",
        {"r": pair["refreshToken"]},
    )
    new_access = refreshed["data"]["refresh"]["accessToken"]
    me = await gql(client, "{ me { email } }", headers={"Authorization": f"Bearer {new_access}"})
    assert me["data"]["me"]["email"] == "grace@example.com"
    replayed = await gql(
        client, "mutation($r: String!) { refresh(refreshToken: $r) { accessToken } }",
        {"r": pair["refreshToken"]},
    )  # fmt: skip
    # As in REST: back at once, a race, refused (later, the family would be revoked).
    assert codes(replayed) == ["refresh_token_just_used"]


async def test_a_page_through_its_whole_life(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    created = await gql(
        client,
        f'mutation {{ createLandingPage(input: {{title: "Spring sale", templateId: "saas-launch"}}) {{ {PAGE} }} }}',
        headers=ada,
    )
    page = created["data"]["createLandingPage"]
    assert page["slug"] == "spring-sale" and page["status"] == "DRAFT" and page["version"] == 1
    assert page["content"]["blocks"], "the template's blocks were copied"
    page_id = page["id"]

    updated = await gql(
        client,
        f"""mutation($id: ID!) {{ updateLandingPage(id: $id, version: 1,
            input: {{title: "Spring sale!", seo: {{meta_title: "Sale"}}}}) {{ {PAGE} }} }}""",
        {"id": page_id},
        headers=ada,
    )
    page = updated["data"]["updateLandingPage"]
    assert (page["title"], page["version"], page["seo"]["meta_title"]) == (
        "Spring sale!",
        2,
        "Sale",
    )
    stale = await gql(
        client,
        'mutation($id: ID!) { updateLandingPage(id: $id, version: 1, input: {title: "x"}) { id } }',
        {"id": page_id},
        headers=ada,
    )
    assert codes(stale) == ["version_conflict"]
    # A content edit saying its version inside the content, as REST's body
    # may: a stale one is refused too (it was ignored, and overwrote work).
    content_query = (
        "mutation($id: ID!, $c: JSON!, $v: Int) "
        "{ updateLandingPageContent(id: $id, content: $c, version: $v) { version } }"
    )
    stale_content = await gql(
        client, content_query, {"id": page_id, "c": {"blocks": [], "version": 1}}, headers=ada
    )
    assert codes(stale_content) == ["version_conflict"]
    disagree = await gql(
        client,
        content_query,
        {"id": page_id, "c": {"blocks": [], "version": 2}, "v": 1},
        headers=ada,
    )
    assert codes(disagree) == ["validation_failed"]
    assert disagree["errors"][0]["extensions"]["details"][0]["path"] == "content.version"
    current = await gql(
        client, content_query, {"id": page_id, "c": {"blocks": [], "version": 2}}, headers=ada
    )
    assert current["data"]["updateLandingPageContent"]["version"] == 3
    bad_slug = await gql(
        client,
        'mutation($id: ID!) { updateLandingPage(id: $id, input: {slug: "Not A Slug!"}) { id } }',
        {"id": page_id},
        headers=ada,
    )
    assert codes(bad_slug) in (["validation_failed"], ["slug_invalid"])
    assert bad_slug["errors"][0]["extensions"]["details"][0]["path"].startswith("input.slug")

    content = {"blocks": [{"type": "hero", "headline": "Half price"}]}
    with_content = await gql(
        client,
        f"mutation($id: ID!, $c: JSON!) {{ updateLandingPageContent(id: $id, content: $c) {{ {PAGE} }} }}",
        {"id": page_id, "c": content},
        headers=ada,
    )
    assert (
        with_content["data"]["updateLandingPageContent"]["content"]["blocks"][0]["headline"]
        == "Half price"
    )
    invalid_content = await gql(
        client,
        "mutation($id: ID!, $c: JSON!) { updateLandingPageContent(id: $id, content: $c) { id } }",
        {"id": page_id, "c": {"blocks": [{"type": "hero"}]}},
        headers=ada,
    )
    assert codes(invalid_content) == ["validation_failed"]
    assert invalid_content["errors"][0]["extensions"]["details"][0]["path"].startswith(
        "content.blocks[0]"
    )
    # Inside a JSON value, the path names the keys as sent (REST's), and
    # an input type's own field the graph's name.
    for mutation, variables, path in (
        (
            "mutation($id: ID!, $c: JSON!) { updateLandingPageContent(id: $id, content: $c) { id } }",
            {"c": {"blocks": [{"type": "hero", "headline": "Go", "cta_url": "javascript:x"}]}},
            "content.blocks[0].cta_url",
        ),
        (
            "mutation($id: ID!, $s: JSON) { updateLandingPage(id: $id, input: {seo: $s}) { id } }",
            {"s": {"meta_title": "x" * 500}},
            "input.seo.meta_title",
        ),
    ):
        refused = await gql(client, mutation, {"id": page_id, **variables}, headers=ada)
        assert codes(refused) == ["validation_failed"], refused
        assert refused["errors"][0]["extensions"]["details"][0]["path"] == path, refused
        assert "instance of" not in refused["errors"][0]["message"], refused

    published = await gql(
        client, f"mutation($id: ID!) {{ publishLandingPage(id: $id) {{ {PAGE} }} }}", {"id": page_id},
        headers=ada,
    )  # fmt: skip
    assert published["data"]["publishLandingPage"]["status"] == "PUBLISHED"
    assert (await client.get("/spring-sale")).status_code == 200
    await gql(
        client,
        "mutation($id: ID!, $c: JSON!) { updateLandingPageContent(id: $id, content: $c) { id } }",
        {"id": page_id, "c": {"blocks": [{"type": "hero", "headline": "Sold out"}]}},
        headers=ada,
    )
    # What a version showed, read before restoring it (REST: GET …/versions/1).
    look = (
        "query($id: ID!, $n: Int!) { landingPage(id: $id) "
        "{ versionDetail(number: $n) { number isLive content seo } } }"
    )
    seen = await gql(client, look, {"id": page_id, "n": 1}, headers=ada)
    detail = seen["data"]["landingPage"]["versionDetail"]
    assert (detail["number"], detail["isLive"]) == (1, True)
    assert detail["content"]["blocks"][0]["headline"] == "Half price"
    assert "meta_title" in detail["seo"]
    for number in (2, 0, -1):
        missing = await gql(client, look, {"id": page_id, "n": number}, headers=ada)
        assert missing["data"]["landingPage"]["versionDetail"] is None
    theirs = await gql(client, look, {"id": page_id, "n": 1}, headers=bob)
    assert theirs["data"]["landingPage"] is None
    restored = await gql(
        client,
        "mutation($id: ID!) { restoreLandingPageVersion(id: $id, number: 1) { content hasUnpublishedChanges } }",
        {"id": page_id},
        headers=ada,
    )
    assert (
        restored["data"]["restoreLandingPageVersion"]["content"]["blocks"][0]["headline"]
        == "Half price"
    )
    missing_version = await gql(
        client, "mutation($id: ID!) { restoreLandingPageVersion(id: $id, number: 9) { id } }",
        {"id": page_id}, headers=ada,
    )  # fmt: skip
    assert codes(missing_version) == ["version_not_found"]
    # Numbers no version can have are refused as REST refuses them.
    for mutation, path in (
        ("restoreLandingPageVersion(id: $id, number: 0) { id }", "number"),
        ("restoreLandingPageVersion(id: $id, number: -1) { id }", "number"),
        ("restoreLandingPageVersion(id: $id, number: 1, version: 0) { id }", "version"),
        ("publishLandingPage(id: $id, version: -5) { id }", "version"),
        ("deleteLandingPage(id: $id, version: 0)", "version"),
        # An argument beside `input`/`content`, named as such, not inside them.
        ('updateLandingPage(id: $id, input: {title: "x"}, version: -1) { id }', "version"),
        ("updateLandingPageContent(id: $id, content: {blocks: []}, version: 0) { id }", "version"),
        # Content that is no object is said so, in no class name of ours.
        ('updateLandingPageContent(id: $id, content: "blocks") { id }', "content"),
    ):
        refused = await gql(
            client, f"mutation($id: ID!) {{ {mutation} }}", {"id": page_id}, headers=ada
        )
        assert codes(refused) == ["validation_failed"], refused
        assert refused["errors"][0]["extensions"]["details"][0]["path"] == path, refused

    for mutation in (
        "publishLandingPage(id: $id) { id }",
        "unpublishLandingPage(id: $id) { id }",
        "deleteLandingPage(id: $id)",
        'updateLandingPage(id: $id, input: {title: "mine"}) { id }',
    ):
        theirs = await gql(
            client, f"mutation($id: ID!) {{ {mutation} }}", {"id": page_id}, headers=bob
        )
        assert codes(theirs) == ["page_not_found"], mutation

    unpublished = await gql(
        client,
        "mutation($id: ID!) { unpublishLandingPage(id: $id) { status publishedVersion publishedAt } }",
        {"id": page_id},
        headers=ada,
    )
    assert unpublished["data"]["unpublishLandingPage"] == {
        "status": "DRAFT", "publishedVersion": None, "publishedAt": None
    }  # fmt: skip
    assert (await client.get("/spring-sale")).status_code == 404
    deleted = await gql(
        client, "mutation($id: ID!) { deleteLandingPage(id: $id) }", {"id": page_id}, headers=ada
    )
    assert deleted["data"]["deleteLandingPage"] == page_id
    assert (await client.get(f"/landing-pages/{page_id}", headers=ada)).status_code == 404


async def test_files_and_api_keys(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    uploaded = await client.post(
        "/files/upload", files={"file": ("a.png", png(), "image/png")}, headers=ada
    )
    file_id = uploaded.json()["id"]
    theirs = await gql(
        client, "mutation($id: ID!) { deleteFile(id: $id) }", {"id": file_id}, headers=bob
    )
    assert codes(theirs) == ["file_not_found"]
    mine = await gql(
        client, "mutation($id: ID!) { deleteFile(id: $id) }", {"id": file_id}, headers=ada
    )
    assert mine["data"]["deleteFile"] == file_id
    assert (await client.get(f"/files/{file_id}", headers=ada)).status_code == 404

    created = await gql(
        client,
        'mutation { createApiKey(name: "deploy") { key apiKey { id name prefix } } }',
        headers=ada,
    )
    key = created["data"]["createApiKey"]
    assert key["key"].startswith(key["apiKey"]["prefix"])
    with_key = await gql(client, "{ me { email } }", headers={"X-API-Key": key["key"]})
    assert with_key["data"]["me"]["email"] == "ada@example.com"
    empty_name = await gql(client, 'mutation { createApiKey(name: "") { key } }', headers=ada)
    assert empty_name["errors"][0]["extensions"]["details"][0]["path"] == "name"

    key_id = key["apiKey"]["id"]
    not_bobs = await gql(
        client, "mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": key_id}, headers=bob
    )
    assert codes(not_bobs) == ["api_key_not_found"]
    revoked = await gql(
        client, "mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": key_id}, headers=ada
    )
    assert revoked["data"]["revokeApiKey"] == key_id
    refused = await gql(client, "{ me { email } }", headers={"X-API-Key": key["key"]})
    rest = await client.get("/auth/me", headers={"X-API-Key": key["key"]})
    assert rest.status_code == 401
    assert codes(refused) == [rest.json()["error"]["code"]]


async def test_mutations_need_a_credential(client: httpx.AsyncClient) -> None:
    result = await gql(client, 'mutation { createLandingPage(input: {title: "x"}) { id } }')
    assert result["data"] is None
    assert codes(result) == ["not_authenticated"]


async def test_account_mutations_match_rest(client: httpx.AsyncClient, app: Any) -> None:
    """Logout, a password change and a reset by mail, over GraphQL as over
    REST: a GraphQL-only client could sign in but never out."""
    await signed_in(client, app, "ada@example.com")
    signin = (
        'mutation($p: String!) { login(email: "ada@example.com", password: $p) '
        "{ accessToken refreshToken } }"
    )
    first = (await gql(client, signin, {"p": PASSWORD}))["data"]["login"]
    out = await gql(
        client, "mutation($t: String!) { logout(refreshToken: $t) }", {"t": first["refreshToken"]}
    )
    assert out["data"] == {"logout": True}
    gone = await client.post("/auth/refresh", json={"refresh_token": first["refreshToken"]})
    assert gone.status_code == 401

    second = (await gql(client, signin, {"p": PASSWORD}))["data"]["login"]

    async def change_password(new: str) -> dict[str, Any]:
        return await gql(
            client,
            "mutation($c: String!, $n: String!) "
            "{ changePassword(currentPassword: $c, newPassword: $n) { accessToken } }",
            {"c": PASSWORD, "n": new},
            headers={"Authorization": f"Bearer {second['accessToken']}"},
        )

    weak = await change_password("ada")
    assert codes(weak) == ["weak_password"]
    # Named as the mutation's argument, not the REST body's field.
    assert {d["path"] for d in weak["errors"][0]["extensions"]["details"]} == {"newPassword"}
    changed = await change_password("a brand new passphrase")
    assert changed["data"]["changePassword"]["accessToken"]
    asked = await gql(client, 'mutation { requestPasswordReset(email: "ada@example.com") }')
    assert asked["data"] == {"requestPasswordReset": True}
    [mail] = [
        m.message
        for m in await app.components.mailer.list(recipient="ada@example.com")
        if "Set a new Landform password" in m.message
    ]
    token = re.search(r"token=([A-Za-z0-9_-]+)", mail)
    assert token
    reset = await gql(
        client,
        "mutation($t: String!, $n: String!) { resetPassword(token: $t, newPassword: $n) }",
        {"t": token.group(1), "n": "yet another long passphrase"},
    )
    assert reset["data"] == {"resetPassword": True}
    assert (await gql(client, signin, {"p": "yet another long passphrase"}))["data"]["login"]
