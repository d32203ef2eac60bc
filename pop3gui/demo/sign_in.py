"""The sandbox's sign-in page: a tiny OAuth2 authorization server on 127.0.0.1, for the demo only.

A mailbox at Microsoft 365 or Gmail signs in at its provider's page in the
browser.  The demo has no provider, so :class:`DemoSignIn` plays one for its
one user (``dana@contoso.com``) on a loopback port:

- ``GET /authorize`` shows "Sign in to the Contoso demo as dana@contoso.com"
  with an Allow and a Deny button (a plain HTML form);
- ``POST /authorize`` is the button: Allow sends the browser back to the
  app's loopback ``redirect_uri`` with ``code`` and ``state`` (RFC 6749
  §4.1.2, RFC 8252), Deny with ``error=access_denied``;
- ``POST /token`` exchanges a code for tokens only with the PKCE verifier of
  its S256 challenge (RFC 7636), and refreshes, each refresh issuing a new
  refresh token and retiring the one it was given (rotation, as Microsoft
  does);
- :meth:`DemoSignIn.is_valid` tells the sandbox's POP3 server whose an access
  token is.

It is clearly a demo: one user, one app, no TLS, no signed tokens,
everything in memory and gone when the sandbox stops.  The standard
library's HTTP server answers in a thread of its own, so it serves whatever
event loop the connector runs on.  :func:`press_allow` is the user in the
browser, for the demo that runs without a screen.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx

from pop3gui.core.errors import OAuthError

DEMO_USER = "dana@contoso.com"
CLIENT_ID = "pop3gui-demo"
SCOPES = ("pop", "offline_access")  # read the mailbox over POP3, and stay signed in
CODE_LIFETIME = 300.0  # seconds an authorization code can be exchanged
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers, body."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Request:
    """A sign-in page on screen, waiting for its button."""

    redirect_uri: str
    state: str
    challenge: str
    scope: str


@dataclass(frozen=True)
class _Code:
    redirect_uri: str
    challenge: str
    scope: str
    expires_at: float


class DemoSignIn:
    """The demo's authorization server; see the module docstring.  :meth:`start`, then :meth:`stop`."""

    def __init__(self, user: str = DEMO_USER, *, client_id: str = CLIENT_ID, access_lifetime: float = 3600.0,
                 host: str = "127.0.0.1") -> None:
        self.user = user
        self.client_id = client_id
        self.access_lifetime = access_lifetime
        self.host = host
        self.port = 0
        self.sign_ins = 0  # codes exchanged for tokens
        self.refreshes = 0  # refresh tokens exchanged (each one rotated)
        self._lock = threading.Lock()
        self._pages: dict[str, _Request] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, tuple[str, float]] = {}  # access token -> (user, expires at)
        self._refresh: dict[str, str] = {}  # live refresh token -> its scope
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    def start(self) -> None:
        server = _Server((self.host, 0), _Handler)
        server.owner = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="pop3gui-demo-sign-in", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # --- for the sandbox's POP3 server and for the tests -------------------------------

    def is_valid(self, token: str) -> str | None:
        """The user an unexpired access token was issued to; None for any other token."""
        with self._lock:
            found = self._access.get(token)
        if found is None or found[1] <= time.time():
            return None
        return found[0]

    def is_live_refresh_token(self, token: str) -> bool:
        """True while *token* can still be exchanged (a refresh retires it)."""
        with self._lock:
            return token in self._refresh

    def expire_access_tokens(self) -> None:
        """Let every access token issued so far run out, as an hour passing would."""
        with self._lock:
            self._access = {token: (user, 0.0) for token, (user, _) in self._access.items()}

    # --- the pages -----------------------------------------------------------------------

    def authorize_page(self, query: dict[str, str]) -> Answer:
        """``GET /authorize``: the sign-in page, or why the request cannot be signed in."""
        if query.get("client_id") != self.client_id:
            return _page(400, "Unknown app", f"This demo sign-in page serves only the app {self.client_id}.")
        redirect_uri = query.get("redirect_uri", "")
        if not _is_loopback(redirect_uri):
            return _page(400, "Wrong redirect address",
                         "An installed app gets its answer on a loopback address (http://127.0.0.1:PORT/).")
        state = query.get("state", "")
        if query.get("response_type") != "code":
            return _redirect(redirect_uri, error="unsupported_response_type", state=state)
        challenge = query.get("code_challenge", "")
        if query.get("code_challenge_method") != "S256" or not challenge:
            return _redirect(redirect_uri, error="invalid_request", state=state,
                             error_description="PKCE with code_challenge_method=S256 is required")
        page = secrets.token_urlsafe(16)
        with self._lock:
            self._pages[page] = _Request(redirect_uri, state, challenge, query.get("scope", ""))
        who = html.escape(self.user)
        scope = html.escape(query.get("scope", "") or "(none)")
        body = (f"<p><small>pop3gui demo sandbox: this page stands in for a mail provider's sign-in page."
                f"</small></p>\n<h2>Sign in to the Contoso demo as {who}</h2>\n"
                f"<p>The app <b>{html.escape(self.client_id)}</b> asks to read this mailbox over POP3 and to "
                f"stay signed in (scopes: {scope}).</p>\n"
                '<form method="post" action="/authorize">\n'
                f'<input type="hidden" name="page" value="{page}">\n'
                '<button type="submit" name="decision" value="allow">Allow</button>\n'
                '<button type="submit" name="decision" value="deny">Deny</button>\n</form>')
        return _page(200, "Contoso demo sign-in", body, raw=True)

    def authorize_decision(self, form: dict[str, str]) -> Answer:
        """``POST /authorize``: the button pressed; back to the app with a code, or with the refusal."""
        with self._lock:
            request = self._pages.pop(form.get("page", ""), None)
        if request is None:
            return _page(400, "This sign-in page has expired", "Start the sign-in again from pop3gui.")
        if form.get("decision") != "allow":
            return _redirect(request.redirect_uri, error="access_denied", state=request.state,
                             error_description="The user pressed Deny on the demo sign-in page")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(request.redirect_uri, request.challenge, request.scope,
                                      time.time() + CODE_LIFETIME)
        return _redirect(request.redirect_uri, code=code, state=request.state)

    def token(self, form: dict[str, str]) -> Answer:
        """``POST /token``: authorization code with PKCE, or refresh token with rotation."""
        if form.get("client_id") != self.client_id:
            return _error(401, "invalid_client", "unknown client_id")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
            if code is None or code.expires_at <= time.time():
                return _error(400, "invalid_grant", "the code is unknown, already used or expired")
            if form.get("redirect_uri") != code.redirect_uri:
                return _error(400, "invalid_grant", "redirect_uri differs from the one of the sign-in page")
            if not secrets.compare_digest(s256(form.get("code_verifier", "")), code.challenge):
                return _error(400, "invalid_grant", "the code_verifier does not match the code_challenge (PKCE)")
            with self._lock:
                self.sign_ins += 1
            return self._issue(code.scope)
        if grant == "refresh_token":
            with self._lock:
                scope = self._refresh.pop(form.get("refresh_token", ""), None)
                if scope is not None:
                    self.refreshes += 1
            if scope is None:
                return _error(400, "invalid_grant", "the refresh token is unknown, or was already used and "
                              "replaced by a newer one")
            return self._issue(scope)
        return _error(400, "unsupported_grant_type", f"grant_type {grant!r} is not offered here")

    def _issue(self, scope: str) -> Answer:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._access[access] = (self.user, time.time() + self.access_lifetime)
            self._refresh[refresh] = scope
        return _json(200, {"access_token": access, "token_type": "Bearer", "expires_in": int(self.access_lifetime),
                           "refresh_token": refresh, "scope": scope, "id_token": _id_token(self.user)})


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _id_token(user: str) -> str:
    """An unsigned id token naming the user: the app shows who signed in (and trusts nothing in it)."""
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode("ascii")

    return part({"alg": "none", "typ": "JWT"}) + "." + part({"email": user, "iss": "pop3gui-demo"}) + "."


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1") and not parts.fragment


def _page(status: int, title: str, text: str, *, raw: bool = False) -> Answer:
    body = text if raw else f"<h2>{html.escape(title)}</h2>\n<p>{html.escape(text)}</p>"
    document = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                "</head>\n<body style=\"font-family: sans-serif; max-width: 36em; margin: 3em auto\">\n"
                f"{body}\n</body></html>\n")
    return Answer(status, document.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})


def _redirect(redirect_uri: str, **params: str) -> Answer:
    separator = "&" if urlsplit(redirect_uri).query else "?"
    location = redirect_uri + separator + urlencode({k: v for k, v in params.items() if v})
    return Answer(302, b"", {"Location": location})


def _json(status: int, data: dict[str, object]) -> Answer:
    return Answer(status, json.dumps(data).encode(), {"Content-Type": "application/json", "Cache-Control": "no-store"})


def _error(status: int, error: str, description: str) -> Answer:
    return _json(status, {"error": error, "error_description": description})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: DemoSignIn


class _Handler(BaseHTTPRequestHandler):
    server_version = "pop3gui-demo-sign-in"

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/authorize":
            self._answer(self._owner().authorize_page(dict(parse_qsl(query))))
        else:
            self._answer(_page(404, "Not found", "This demo sign-in server has /authorize and /token."))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(_error(413, "invalid_request", "request too large"))
            return
        form = dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))
        path = self.path.partition("?")[0]
        if path == "/authorize":
            self._answer(self._owner().authorize_decision(form))
        elif path == "/token":
            self._answer(self._owner().token(form))
        else:
            self._answer(_error(404, "invalid_request", "no such endpoint"))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # the demo prints its own story; no access log on the terminal

    def _owner(self) -> DemoSignIn:
        assert isinstance(self.server, _Server)
        return self.server.owner

    def _answer(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


# --- the user in the browser ---------------------------------------------------------------


class _FormReader(HTMLParser):
    """The first form of a page: its action and hidden fields, and the value of its Allow button."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.allow: tuple[str, str] | None = None
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = found.get("action", "")
        elif self.action is not None and not self._done:
            if tag == "input" and found.get("type") == "hidden" and found.get("name"):
                self.fields[found["name"]] = found.get("value", "")
            elif tag == "button" and found.get("value") == "allow" and found.get("name"):
                self.allow = (found["name"], "allow")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True


async def press_allow(url: str, *, timeout: float = 10.0) -> None:
    """Do what the user does in the browser: open the sign-in page, press Allow, follow it back to the app.

    Pass it as the page opener of a sign-in (``SignIns.sign_in(..., open_page=press_allow)``): the app's
    loopback listener then receives the redirect exactly as it would from a browser.
    """
    try:
        # Only loopback addresses are visited: no proxy from the environment applies.
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as browser:
            page = await browser.get(url)
            reader = _FormReader()
            reader.feed(page.text)
            if page.status_code != 200 or reader.action is None or reader.allow is None:
                raise _page_broken(f"the demo sign-in page answered {page.status_code} without an Allow button")
            name, value = reader.allow
            pressed = await browser.post(urljoin(url, reader.action), data={**reader.fields, name: value})
            back = pressed.headers.get("Location", "")
            if pressed.status_code != 302 or not back:
                raise _page_broken(f"pressing Allow answered {pressed.status_code} instead of going back to pop3gui")
            await browser.get(back)
    except httpx.HTTPError as exc:
        raise _page_broken(f"the demo sign-in page cannot be reached: {type(exc).__name__}") from None


def _page_broken(message: str) -> OAuthError:
    return OAuthError(message, cause="The sandbox's own sign-in server did not behave as the demo expects.",
                      fix="Run the demo again; if it persists, report it.")
