"""A small GitHub REST client: open a pull request, read one's state, fetch an issue. Standard library only
(urllib): three endpoints do not justify a dependency.

The token comes from GH_TOKEN or GITHUB_TOKEN (GH_ENTERPRISE_TOKEN or GITHUB_ENTERPRISE_TOKEN for another
host, as the `gh` CLI reads them), else from `gh auth token` when gh is installed. It is sent only to the
API host (a redirect elsewhere drops it) and never appears in an error: errors carry what the API said."""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from tsk.engine import proc
from tsk.errors import TskError
from tsk.text import one_line

API_VERSION = "2022-11-28"
PUBLIC_HOST = "github.com"
PUBLIC_API = "https://api.github.com"
MAX_RESPONSE = 8 * 1024 * 1024
MAX_ISSUE_BODY = 64 * 1024


class ForgeError(TskError):
    """The forge refused, failed or could not be asked. `status` is the HTTP status, when there was one."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ForgeUnreachable(ForgeError):
    """No answer from the API (DNS, connection, TLS, timeout)."""


class ForgeAuthError(ForgeError):
    """No token, or the API rejected it (401) or forbade the request (403)."""


class ForgeNotFound(ForgeError):
    """404: no such repository, pull request or issue, or the token cannot see it."""


class RepoRef(msgspec.Struct, frozen=True, kw_only=True):
    host: str  # github.com, or a GitHub Enterprise host
    owner: str
    name: str

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"


class PullRequest(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    url: str  # the page a person opens
    state: Literal["open", "closed", "merged"]
    title: str
    head: str
    base: str
    draft: bool = False


class Issue(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    title: str
    body: str
    url: str | None = None


_SCP = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!/).+)$")  # git@github.com:o/r.git
_PART = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_repo(text: str, *, default_host: str = PUBLIC_HOST) -> RepoRef:
    """`owner/repo`, or a remote URL in its https, ssh or scp-like (`git@host:owner/repo.git`) form."""
    s = text.strip()
    host = default_host
    if "://" in s:
        u = urllib.parse.urlsplit(s)
        if u.scheme not in ("https", "http", "ssh", "git", "git+ssh") or not u.hostname:
            raise ForgeError(f"cannot read a GitHub repository from {redact_urls(s)!r}: not an https or ssh URL")
        host, path = u.hostname, u.path
    elif (m := _SCP.match(s)) and not s.startswith(("/", ".")):
        host, path = m["host"], m["path"]
    else:
        path = s
    parts = [p for p in path.strip("/").split("/") if p]
    if parts and parts[-1].endswith(".git"):
        parts[-1] = parts[-1][:-4]
    if len(parts) != 2 or not all(_PART.match(p) for p in parts):
        raise ForgeError(f"cannot read a GitHub repository from {redact_urls(s)!r}: expected `owner/repo` "
                         "or a remote URL such as https://github.com/owner/repo.git or git@github.com:owner/repo.git")
    return RepoRef(host=host.lower(), owner=parts[0], name=parts[1])


def api_base(host: str) -> str:
    """The REST API of a host: api.github.com for github.com, https://<host>/api/v3 for GitHub Enterprise."""
    return PUBLIC_API if host in (PUBLIC_HOST, "www.github.com") else f"https://{host}/api/v3"


def find_token(env: Mapping[str, str], *, host: str = PUBLIC_HOST) -> str | None:
    """The token to use for `host`, from the environment, else from the gh CLI's login; None when there is none."""
    names = ("GH_TOKEN", "GITHUB_TOKEN") if host == PUBLIC_HOST else ("GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN")
    for name in names:
        if env.get(name, "").strip():
            return env[name].strip()
    gh = shutil.which("gh", path=env.get("PATH"))
    if gh is None:
        return None
    done = proc.run([gh, "auth", "token", "--hostname", host], env=dict(env), check=False, timeout=20)
    token = done.stdout.decode(errors="replace").strip()
    return token if done.returncode == 0 and token and "\n" not in token else None


def connect(remote: str, env: Mapping[str, str], *, api: str | None = None, timeout: float = 30.0) -> GitHub:
    """The client for the repository a remote URL (or `owner/repo`) names, with the token found for its host."""
    repo = parse_repo(remote)
    return GitHub(repo, token=find_token(env, host=repo.host), api=api, timeout=timeout)


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect, but carry the token only to the host it was meant for."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


class GitHub:
    """The REST API of one repository. `api` defaults to the repository host's (see api_base)."""

    def __init__(self, repo: RepoRef, *, token: str | None, api: str | None = None, timeout: float = 30.0) -> None:
        self.repo = repo
        self.api = (api or api_base(repo.host)).rstrip("/")
        self.timeout = timeout
        self._token = token
        self._opener = urllib.request.build_opener(_SameHostRedirects())

    def create_pull(self, *, title: str, head: str, base: str, body: str, draft: bool = False) -> PullRequest:
        """Open a pull request from branch `head` (pushed to this repo, or `owner:branch` of a fork) into `base`."""
        if not self._token:
            raise ForgeAuthError(f"no GitHub token to open a pull request on {self.repo.slug}",
                                 hint="set GH_TOKEN, or log in with `gh auth login`")
        got = self._call("POST", f"/repos/{self._path()}/pulls", f"open a pull request from {head} into {base}",
                         {"title": title, "head": head, "base": base, "body": body, "draft": draft})
        return _pull(got)

    def pull(self, number: int) -> PullRequest:
        return _pull(self._call("GET", f"/repos/{self._path()}/pulls/{int(number)}", f"read pull request #{number}"))

    def issue(self, number: int) -> Issue:
        got = self._call("GET", f"/repos/{self._path()}/issues/{int(number)}", f"read issue #{number}")
        body = got.get("body") or ""
        return Issue(number=_number(got, f"issue #{number}"), title=str(got.get("title") or ""),
                     body=str(body)[:MAX_ISSUE_BODY], url=got.get("html_url"))

    def issue_if_reachable(self, number: int) -> Issue | None:
        """The issue, or None when the forge cannot be asked or will not say (a prompt then names the number only)."""
        try:
            return self.issue(number)
        except ForgeError:
            return None

    def _path(self) -> str:
        return f"{urllib.parse.quote(self.repo.owner)}/{urllib.parse.quote(self.repo.name)}"

    def _call(self, method: str, path: str, doing: str, payload: Mapping[str, object] | None = None) -> Any:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": "tsk"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        req = urllib.request.Request(self.api + path, data=data, headers=headers, method=method)
        what = f"could not {doing} on {self.repo.slug}"
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            raise self._refused(exc, what) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ForgeUnreachable(f"{what}: {self.api} did not answer ({self._clean(str(reason))})",
                                   hint="check the network, or the API address for GitHub Enterprise") from None
        if len(raw) > MAX_RESPONSE:
            raise ForgeError(f"{what}: the answer is larger than {MAX_RESPONSE} bytes")
        try:
            got = json.loads(raw)
        except ValueError:
            raise ForgeError(f"{what}: the answer is not JSON") from None
        if not isinstance(got, dict):
            raise ForgeError(f"{what}: expected a JSON object in the answer")
        return got

    def _refused(self, exc: urllib.error.HTTPError, what: str) -> ForgeError:
        said = self._clean(_api_message(exc))
        status = f"{exc.code} {exc.reason}".strip()
        message = f"{what}: GitHub answered {status}" + (f": {said}" if said else "")
        if exc.code == 401:
            return ForgeAuthError(message, status=exc.code, hint="the token is wrong or expired; set GH_TOKEN, "
                                                                  "or log in again with `gh auth login`")
        if exc.code == 403:
            return ForgeAuthError(message, status=exc.code, hint="the token may lack the `repo` (or pull requests: "
                                                                  "write) permission, or a rate limit was hit")
        if exc.code == 404:
            return ForgeNotFound(message, status=exc.code, hint=f"check that {self.repo.slug} exists on "
                                                                 f"{self.repo.host} and that the token can see it")
        return ForgeError(message, status=exc.code)

    def _clean(self, text: str) -> str:
        """What the API or the network said, on one line, never with the token in it."""
        out = one_line(text)
        if self._token:
            out = out.replace(self._token, "***")
        return redact_urls(out)[:2000]


def _api_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(64 * 1024) or b"{}")
    except (ValueError, OSError):
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message") or "")]
    for err in body.get("errors") or ():
        if isinstance(err, dict):
            parts.append(str(err.get("message") or " ".join(str(err[k]) for k in ("resource", "field", "code")
                                                            if k in err)))
        else:
            parts.append(str(err))
    return "; ".join(p for p in parts if p)


def _number(got: Mapping[str, Any], what: str) -> int:
    n = got.get("number")
    if isinstance(n, bool) or not isinstance(n, int):
        raise ForgeError(f"GitHub's answer for {what} has no number; is the API address right?")
    return n


def _pull(got: Mapping[str, Any]) -> PullRequest:
    merged = bool(got.get("merged")) or bool(got.get("merged_at"))
    state: Literal["open", "closed", "merged"] = "merged" if merged else ("open" if got.get("state") == "open"
                                                                         else "closed")
    return PullRequest(number=_number(got, "a pull request"), url=str(got.get("html_url") or ""), state=state,
                       title=str(got.get("title") or ""), head=str((got.get("head") or {}).get("ref") or ""),
                       base=str((got.get("base") or {}).get("ref") or ""), draft=bool(got.get("draft")))


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact_urls(text: str) -> str:
    """A URL's user and password (`https://x:token@host`) never reach a message."""
    return _USERINFO.sub("***@", text)
