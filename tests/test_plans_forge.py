"""The GitHub client against a local HTTP server that answers its three endpoints and records every request;
the token's sources; remote URLs; and the pull request body."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import GitHubServer

from tsk.plans import forge
from tsk.plans.forge import GitHub, RepoRef
from tsk.plans.model import PlanTask
from tsk.plans.pulls import Attempt, Validation, pr_body, pr_title

TOKEN = "ghp_test_secret_value_123"


class FakeGitHub(GitHubServer):
    def client(self, token: str | None = TOKEN) -> GitHub:
        return GitHub(RepoRef(host="ghe.example.com", owner="o", name="r"), token=token, api=f"{self.url}/api/v3",
                      timeout=10)


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with FakeGitHub() as fake:
        yield fake


PULL = {"number": 7, "html_url": "https://ghe.example.com/o/r/pull/7", "state": "open", "title": "Add /orders",
        "head": {"ref": "tsk/feat/orders/abc"}, "base": {"ref": "main"}, "draft": True, "merged": False}


def test_a_pull_request_is_created_with_the_api_headers(gh: FakeGitHub) -> None:
    gh.answers[("POST", "/api/v3/repos/o/r/pulls")] = (201, PULL)
    pr = gh.client().create_pull(title="Add /orders", head="tsk/feat/orders/abc", base="main", body="b", draft=True)
    assert (pr.number, pr.state, pr.url, pr.head, pr.base, pr.draft) == (
        7, "open", "https://ghe.example.com/o/r/pull/7", "tsk/feat/orders/abc", "main", True)
    (req,) = gh.requests
    assert req["body"] == {"title": "Add /orders", "head": "tsk/feat/orders/abc", "base": "main", "body": "b",
                           "draft": True}
    h = req["headers"]
    assert h["authorization"] == f"Bearer {TOKEN}"
    assert h["accept"] == "application/vnd.github+json"
    assert h["x-github-api-version"] == "2022-11-28"
    assert h["content-type"] == "application/json"


@pytest.mark.parametrize(("answer", "state"), [
    ({"state": "open", "merged": False}, "open"), ({"state": "closed", "merged": False}, "closed"),
    ({"state": "closed", "merged": True, "merged_at": "2026-01-01T00:00:00Z"}, "merged")])
def test_a_pull_requests_state_is_read(gh: FakeGitHub, answer: dict[str, object], state: str) -> None:
    gh.answers[("GET", "/api/v3/repos/o/r/pulls/7")] = (200, {**PULL, **answer})
    assert gh.client().pull(7).state == state
    assert gh.requests[0]["body"] is None and "content-type" not in gh.requests[0]["headers"]


def test_an_issue_is_fetched_and_its_body_bounded(gh: FakeGitHub) -> None:
    gh.answers[("GET", "/api/v3/repos/o/r/issues/12")] = (200, {"number": 12, "title": "Orders", "body": "x" * 100_000,
                                                                 "html_url": "https://ghe.example.com/o/r/issues/12"})
    issue = gh.client(token=None).issue(12)
    assert (issue.number, issue.title, len(issue.body)) == (12, "Orders", forge.MAX_ISSUE_BODY)
    assert "authorization" not in gh.requests[0]["headers"]  # a public issue needs no token


def test_a_refusal_says_what_the_api_said_and_never_the_token(gh: FakeGitHub) -> None:
    gh.answers[("POST", "/api/v3/repos/o/r/pulls")] = (422, {
        "message": "Validation Failed", "errors": [
            {"resource": "PullRequest", "code": "custom", "message": f"A pull request already exists for o:b ({TOKEN})"}]})
    with pytest.raises(forge.ForgeError) as err:
        gh.client().create_pull(title="t", head="b", base="main", body="")
    text = str(err.value)
    assert err.value.status == 422
    assert "could not open a pull request from b into main on o/r: GitHub answered 422 Unprocessable Entity: " \
           "Validation Failed; A pull request already exists for o:b (***)" in text
    assert TOKEN not in text


def test_bad_credentials_and_missing_things_are_their_own_errors(gh: FakeGitHub) -> None:
    gh.answers[("GET", "/api/v3/repos/o/r/pulls/1")] = (401, {"message": "Bad credentials"})
    with pytest.raises(forge.ForgeAuthError, match="401 Unauthorized: Bad credentials") as err:
        gh.client().pull(1)
    assert err.value.hint and "GH_TOKEN" in err.value.hint and TOKEN not in str(err.value)
    with pytest.raises(forge.ForgeNotFound, match="could not read issue #99 on o/r: GitHub answered 404"):
        gh.client().issue(99)
    assert gh.client().issue_if_reachable(99) is None


def test_an_answer_that_is_not_githubs_is_an_error(gh: FakeGitHub) -> None:
    gh.answers[("GET", "/api/v3/repos/o/r/pulls/3")] = (200, {"message": "a proxy's page"})
    with pytest.raises(forge.ForgeError, match="has no number; is the API address right"):
        gh.client().pull(3)
    gh.answers[("GET", "/api/v3/repos/o/r/pulls/4")] = (200, ["not", "an", "object"])
    with pytest.raises(forge.ForgeError, match="expected a JSON object"):
        gh.client().pull(4)


def test_a_client_for_a_remote(tmp_path: Path) -> None:
    client = forge.connect("git@ghe.example.com:acme/shop.git", {"GH_ENTERPRISE_TOKEN": "e", "PATH": str(tmp_path)})
    assert (client.repo.slug, client.api) == ("acme/shop", "https://ghe.example.com/api/v3")
    assert forge.connect("acme/shop", {"PATH": ""}, api="https://x/api/v3/").api == "https://x/api/v3"


def test_no_token_no_pull_request(gh: FakeGitHub) -> None:
    with pytest.raises(forge.ForgeAuthError, match="no GitHub token"):
        gh.client(token=None).create_pull(title="t", head="b", base="main", body="")
    assert gh.requests == []


def test_an_unreachable_api_is_said_to_be(gh: FakeGitHub) -> None:
    url = gh.url
    gh.server.shutdown()
    gh.server.server_close()
    client = GitHub(RepoRef(host="x", owner="o", name="r"), token=TOKEN, api=url, timeout=5)
    with pytest.raises(forge.ForgeUnreachable, match="did not answer"):
        client.pull(1)
    assert client.issue_if_reachable(1) is None


def test_a_redirect_to_another_host_does_not_carry_the_token(gh: FakeGitHub) -> None:
    other = FakeGitHub()
    other.thread.start()
    try:
        other.answers[("GET", "/moved/issues/5")] = (200, {"number": 5, "title": "t", "body": "b"})
        gh.answers[("GET", "/api/v3/repos/o/r/issues/5")] = (307, f"{other.url}/moved/issues/5")
        gh.answers[("GET", "/api/v3/repos/o/r/issues/6")] = (307, f"{gh.url}/api/v3/repos/o/r/issues/7")
        gh.answers[("GET", "/api/v3/repos/o/r/issues/7")] = (200, {"number": 7, "title": "t", "body": "b"})
        assert gh.client().issue(5).number == 5
        assert "authorization" not in other.requests[0]["headers"]
        assert gh.client().issue(6).number == 7
        assert gh.requests[-1]["headers"]["authorization"] == f"Bearer {TOKEN}"  # the same host keeps it
    finally:
        other.server.shutdown()
        other.server.server_close()


@pytest.mark.parametrize(("url", "host", "slug"), [
    ("acme/shop", "github.com", "acme/shop"),
    ("https://github.com/acme/shop.git", "github.com", "acme/shop"),
    ("https://user:pw@github.com/acme/shop/", "github.com", "acme/shop"),
    ("git@github.com:acme/shop.git", "github.com", "acme/shop"),
    ("ssh://git@ghe.example.com:2222/acme/shop.git", "ghe.example.com", "acme/shop"),
    ("github.com:acme/shop", "github.com", "acme/shop"),
])
def test_the_owner_and_repo_are_read_from_a_remote_url(url: str, host: str, slug: str) -> None:
    ref = forge.parse_repo(url)
    assert (ref.host, ref.slug) == (host, slug)


@pytest.mark.parametrize("url", ["https://github.com/acme", "file:///srv/git/r.git", "/srv/git/r.git",
                                 "https://x:secret@gitlab.com/a/b/c.git"])
def test_urls_that_name_no_github_repository(url: str) -> None:
    with pytest.raises(forge.ForgeError) as err:
        forge.parse_repo(url)
    assert "secret" not in str(err.value)


def test_the_api_base_of_a_host() -> None:
    assert forge.api_base("github.com") == "https://api.github.com"
    assert forge.api_base("ghe.example.com") == "https://ghe.example.com/api/v3"


def test_the_token_comes_from_the_environment_then_gh(tmp_path: Path) -> None:
    assert forge.find_token({"GH_TOKEN": "a", "GITHUB_TOKEN": "b", "PATH": ""}) == "a"
    assert forge.find_token({"GITHUB_TOKEN": "b", "PATH": ""}) == "b"
    assert forge.find_token({"GITHUB_TOKEN": "b", "PATH": ""}, host="ghe.example.com") is None
    assert forge.find_token({"GH_ENTERPRISE_TOKEN": "e", "PATH": ""}, host="ghe.example.com") == "e"
    assert forge.find_token({"PATH": str(tmp_path)}) is None  # no gh installed
    gh = tmp_path / "gh"
    gh.write_text('#!/bin/sh\n[ "$1 $2 $3 $4" = "auth token --hostname github.com" ] && echo gho_from_gh && exit 0\n'
                  "exit 1\n")
    gh.chmod(0o755)
    env = {"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"}
    assert forge.find_token(env) == "gho_from_gh"
    assert forge.find_token(env, host="ghe.example.com") is None  # gh is not logged in there


# ----- the pull request's title and body -----

def test_the_body_has_the_summary_closes_attempts_validation_and_instructions() -> None:
    body = pr_body(instructions="# Add /orders\n\nUse ```fences``` freely.", summary="Added GET /orders.",
                   attempts=[Attempt(number=1, outcome="validation", reason="tests failed", seconds=95),
                             Attempt(number=2, outcome="complete", seconds=30)],
                   validation=Validation(command="pytest -q", passed=True, output="3 passed\n"),
                   issue=12, task="abc123", branch="tsk/feat/orders/abc123")
    assert body.startswith("Added GET /orders.\n\nCloses #12\n\n### Attempts\n\n| # | outcome | reason | time |")
    assert "| 1 | validation | tests failed | 1m35s |" in body and "| 2 | complete |  | 30s |" in body
    assert "### Validation\n\n` pytest -q ` passed." in body and "3 passed" in body
    assert "````text\n# Add /orders\n\nUse ```fences``` freely.\n````" in body  # a longer fence than any inside
    assert body.rstrip().endswith("Made by tsk from task `abc123`, branch `tsk/feat/orders/abc123`.")


def test_the_agents_words_cannot_close_issues_or_mention_people() -> None:
    body = pr_body(instructions="x", summary="Fixes #3, closes: other/repo#4. Thanks @octocat; mail a@b.com")
    assert "Fixes #3" not in body and "closes: other/repo#4" not in body.lower()
    assert "@octocat" not in body and "a@b.com" in body
    assert "Closes #" not in body  # no issue given


def test_a_title_is_one_line() -> None:
    assert pr_title(PlanTask(id="t", title="Add\n  /orders ", where="$")) == "Add /orders"
