"""A fake OAuth2 authorization server for tests: RFC 6749 with PKCE, device flow, introspection.

It plays Microsoft's identity platform (its error texts carry the AADSTS codes
Entra ID sends) closely enough for the connector's sign-in code, and answers
token introspection (RFC 7662) the way Dovecot's oauth2 passdb asks, so a
token it issued logs in to the test Dovecot.  Standard library only: an
``http.server`` in a thread of its own, so sync and async tests use it alike.

Usage::

    with FakeAuthServer() as idp:              # or: async with FakeAuthServer() as idp
        url = idp.authorize_url + "?" + urlencode({...})
        ...                                   # fetch url: 302 to redirect_uri?code=...&state=...
        tokens = idp.issue_tokens()           # or straight away, without a flow

Endpoints (``base_url`` + path): ``/authorize`` (GET), ``/token``,
``/device``, ``/introspect`` and ``/revoke`` (POST, form-encoded).

Knobs (attributes, settable at any time; ``reset()`` restores the
constructor's values): ``user`` (who signs in), ``client_id``,
``client_secret`` (empty: a public client), ``access_lifetime`` and
``refresh_lifetime`` (seconds), ``token_length`` and ``refresh_token_length``
(characters; Microsoft's access tokens are about 1500), ``deny_consent``,
``slow_down_once``, ``interval`` and ``device_expires_in`` (device flow),
``rotate_refresh_tokens`` (False: a refresh keeps the old refresh token and
returns none, as Google does), ``replaced_refresh_tokens_live`` (True: a
rotated-out refresh token keeps working until it expires, as Microsoft's
do; False: it dies at once, the strictest provider), ``introspection_down`` (introspection answers
503, as a provider outage looks to Dovecot).

Its clock is the real one plus ``advance(seconds)``, so expiry is tested
without waiting.

What it records: ``token_requests`` (one dict per /token call: the grant type
and parameters, every secret only as a boolean, plus the HTTP status and the
error code), ``authorize_requests``, ``introspections`` (how many).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

#: Token request parameters that are secrets: recorded only as "was it there".
SECRET_PARAMS = frozenset({"code", "code_verifier", "refresh_token", "client_secret", "device_code",
                           "client_assertion", "password"})

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class OAuthFailure(Exception):
    """An OAuth2 error answer: HTTP status, RFC 6749 error code and its description."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


@dataclass
class _Token:
    kind: str  # "access" or "refresh"
    user: str
    client_id: str
    scope: str
    grant: int  # tokens issued from one sign-in share it; revoking a refresh token ends them all
    expires_at: float
    revoked: bool = False


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    user: str
    expires_at: float
    used: bool = False


@dataclass
class _Device:
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    state: str = "pending"  # pending, approved, denied, used
    user: str = ""
    slowed: bool = False


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _b64url_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _random_token(length: int) -> str:
    """Characters an RFC 6750 b64token may hold, as long as asked."""
    text = ""
    while len(text) < length:
        text += secrets.token_urlsafe(length)
    return text[:length]


class _ThreadedServer:
    """An HTTP server on 127.0.0.1 (a free port) served from a daemon thread; ``stop`` waits for it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{name}-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


class FakeAuthServer:
    """An OAuth2 authorization server on 127.0.0.1; see the module docstring."""

    def __init__(self, user: str = "alice@contoso.com", client_id: str = "pop3gui-test",
                 client_secret: str = "", access_lifetime: int = 3600, *,
                 refresh_lifetime: int = 90 * 86400, token_length: int = 1500,
                 refresh_token_length: int = 500, deny_consent: bool = False,
                 slow_down_once: bool = False, interval: int = 1, device_expires_in: int = 900,
                 rotate_refresh_tokens: bool = True, introspection_down: bool = False,
                 replaced_refresh_tokens_live: bool = False) -> None:
        self._defaults: dict[str, Any] = dict(
            user=user, client_id=client_id, client_secret=client_secret, access_lifetime=access_lifetime,
            refresh_lifetime=refresh_lifetime, token_length=token_length,
            refresh_token_length=refresh_token_length, deny_consent=deny_consent,
            slow_down_once=slow_down_once, interval=interval, device_expires_in=device_expires_in,
            rotate_refresh_tokens=rotate_refresh_tokens, introspection_down=introspection_down,
            replaced_refresh_tokens_live=replaced_refresh_tokens_live,
        )
        self.user = user
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.token_length = token_length
        self.refresh_token_length = refresh_token_length
        self.deny_consent = deny_consent
        self.slow_down_once = slow_down_once
        self.interval = interval
        self.device_expires_in = device_expires_in
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.introspection_down = introspection_down
        self.replaced_refresh_tokens_live = replaced_refresh_tokens_live
        self.token_requests: list[dict[str, Any]] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.introspections = 0
        self._lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}
        self._grants = itertools.count(1)
        self._offset = 0.0
        self._server: _ThreadedServer | None = None
        self.port = 0

    # -------------------------------------------------------------- life cycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def device_url(self) -> str:
        return self.base_url + "/device"

    @property
    def introspect_url(self) -> str:
        return self.base_url + "/introspect"

    @property
    def revoke_url(self) -> str:
        return self.base_url + "/revoke"

    def start(self) -> Self:
        """Listen on 127.0.0.1 (a free port, ``port``) and serve in a daemon thread."""
        if self._server is None:
            self._server = _ThreadedServer(_handler_for(self), "fake-oauth")
            self.port = self._server.port
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    def reset(self, **changes: Any) -> None:
        """Forget every token, code, device and record; knobs back to the constructor's (or *changes*)."""
        unknown = set(changes) - set(self._defaults)
        if unknown:
            raise TypeError(f"unknown knobs: {sorted(unknown)}")
        with self._lock:
            for name, value in {**self._defaults, **changes}.items():
                setattr(self, name, value)
            self._tokens.clear()
            self._codes.clear()
            self._devices.clear()
            self.token_requests.clear()
            self.authorize_requests.clear()
            self.introspections = 0
            self._offset = 0.0

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The server's time: the real clock moved on by every ``advance``."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Let *seconds* pass for the server (tokens, codes and device codes expire) without waiting."""
        with self._lock:
            self._offset += seconds

    # ------------------------------------------------------- what tests steer

    def issue_tokens(self, *, user: str | None = None, scope: str = "mail", refresh: bool = True,
                     client_id: str | None = None) -> dict[str, Any]:
        """Tokens as a sign-in would give them, without the flow: the /token response body."""
        with self._lock:
            return self._issue(user or self.user, client_id or self.client_id, scope,
                               refresh=refresh, id_token=refresh)

    def approve_device(self, user_code: str, user: str | None = None) -> None:
        """The user enters *user_code* and signs in: the next poll gets tokens."""
        with self._lock:
            device = self._device_by_user_code(user_code)
            device.state = "approved"
            device.user = user or self.user

    def deny_device(self, user_code: str) -> None:
        """The user declines the device sign-in: the next poll gets access_denied."""
        with self._lock:
            self._device_by_user_code(user_code).state = "denied"

    def pending_user_codes(self) -> list[str]:
        """User codes of device sign-ins nobody approved or denied yet."""
        with self._lock:
            return [d.user_code for d in self._devices.values() if d.state == "pending"]

    def revoke_all(self, user: str | None = None) -> None:
        """Every token of *user* (default: ``user``) stops working, as after a password reset."""
        who = (user or self.user).lower()
        with self._lock:
            for token in self._tokens.values():
                if token.user.lower() == who:
                    token.revoked = True

    def expire_access_tokens(self) -> None:
        """Every access token is out of date from now on; refresh tokens still work."""
        with self._lock:
            now = self.now()
            for token in self._tokens.values():
                if token.kind == "access":
                    token.expires_at = min(token.expires_at, now - 1)

    def live_refresh_tokens(self) -> list[str]:
        """Refresh tokens that would still be honoured now."""
        with self._lock:
            return [text for text, token in self._tokens.items()
                    if token.kind == "refresh" and self._live(token)]

    def live_access_tokens(self) -> list[str]:
        """Access tokens introspection would call active now."""
        with self._lock:
            return [text for text, token in self._tokens.items()
                    if token.kind == "access" and self._live(token)]

    def is_live(self, token: str) -> bool:
        """Whether *token* (access or refresh) would be honoured now."""
        with self._lock:
            found = self._tokens.get(token)
            return found is not None and self._live(found)

    # --------------------------------------------------------------- the model

    def _live(self, token: _Token) -> bool:
        return not token.revoked and token.expires_at > self.now()

    def _device_by_user_code(self, user_code: str) -> _Device:
        wanted = user_code.replace("-", "").upper()
        for device in self._devices.values():
            if device.user_code.replace("-", "").upper() == wanted:
                return device
        raise KeyError(f"no device sign-in with user code {user_code!r}")

    def _new_token(self, kind: str, user: str, client_id: str, scope: str, grant: int, lifetime: int) -> str:
        length = self.token_length if kind == "access" else self.refresh_token_length
        text = _random_token(length)
        self._tokens[text] = _Token(kind, user, client_id, scope, grant, self.now() + lifetime)
        return text

    def _issue(self, user: str, client_id: str, scope: str, *, refresh: bool, id_token: bool,
               grant: int | None = None) -> dict[str, Any]:
        grant = next(self._grants) if grant is None else grant
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": self.access_lifetime,
            "access_token": self._new_token("access", user, client_id, scope, grant, self.access_lifetime),
        }
        if refresh:
            body["refresh_token"] = self._new_token("refresh", user, client_id, scope, grant,
                                                    self.refresh_lifetime)
        if id_token:
            body["id_token"] = self._id_token(user, client_id)
        return body

    def _id_token(self, user: str, client_id: str) -> str:
        """An unsigned JWT (alg none) naming the user, as a client reads it for the account name."""
        now = int(self.now())
        claims = {"iss": self.base_url, "aud": client_id, "sub": hashlib.sha256(user.encode()).hexdigest()[:32],
                  "iat": now, "exp": now + 3600, "preferred_username": user, "email": user}
        return _b64url_json({"alg": "none", "typ": "JWT"}) + "." + _b64url_json(claims) + "."

    # ------------------------------------------------------------- /authorize

    def _authorize(self, query: dict[str, str]) -> str:
        """The Location to redirect the browser to; OAuthFailure when there is nowhere safe to send it."""
        with self._lock:
            self.authorize_requests.append({k: v for k, v in query.items() if k != "code_challenge"})
            client_id = query.get("client_id", "")
            if client_id != self.client_id:
                raise OAuthFailure(400, "unauthorized_client", _unknown_client(client_id))
            redirect_uri = query.get("redirect_uri", "")
            parts = urlsplit(redirect_uri)
            if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS or not parts.port:
                raise OAuthFailure(400, "invalid_request",
                                   f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request"
                                   " does not match the redirect URIs configured for the application.")
            state = query.get("state", "")

            def back(params: dict[str, str]) -> str:
                if state:
                    params["state"] = state
                return redirect_uri + ("&" if parts.query else "?") + urlencode(params)

            if query.get("response_type") != "code":
                return back({"error": "unsupported_response_type",
                             "error_description": "AADSTS700054: response_type 'code' is expected."})
            challenge = query.get("code_challenge", "")
            if not challenge or query.get("code_challenge_method") != "S256":
                return back({"error": "invalid_request",
                             "error_description": "AADSTS9002325: Proof Key for Code Exchange (S256) is"
                             " required for cross-origin authorization code redemption."})
            if self.deny_consent:
                return back({"error": "access_denied",
                             "error_description": "AADSTS65001: The user or administrator has not consented"
                             " to use the application with ID '" + client_id + "'. Send an interactive"
                             " authorization request for this user and resource."})
            code = _random_token(120)
            self._codes[code] = _Code(client_id, redirect_uri, challenge, query.get("scope", ""), self.user,
                                      self.now() + 600)
            return back({"code": code})

    # ----------------------------------------------------------------- /token

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        record: dict[str, Any] = {k: (bool(v) if k in SECRET_PARAMS else v) for k, v in form.items()}
        if basic is not None:
            record["client_id"] = basic[0]
            record["client_secret"] = bool(basic[1])
            record["basic_auth"] = True
        with self._lock:
            self.token_requests.append(record)
            try:
                body = self._grant(form, basic)
            except OAuthFailure as failure:
                record.update(status=failure.status, error=failure.error)
                raise
            record.update(status=200, error="")
            return body

    def _grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id, secret = basic if basic is not None else (form.get("client_id", ""),
                                                             form.get("client_secret", ""))
        grant_type = form.get("grant_type", "")
        if client_id != self.client_id:
            raise OAuthFailure(400, "invalid_client", _unknown_client(client_id))
        if self.client_secret:
            if not secret:
                raise OAuthFailure(401, "invalid_client",
                                   "AADSTS7000218: The request body must contain the following parameter:"
                                   " 'client_assertion' or 'client_secret'.")
            if not secrets.compare_digest(secret, self.client_secret):
                raise OAuthFailure(401, "invalid_client",
                                   "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent"
                                   " in the request is the client secret value, not the client secret ID.")
        elif secret:
            raise OAuthFailure(400, "invalid_client",
                               "AADSTS700025: Client is public so neither 'client_assertion' nor"
                               " 'client_secret' should be presented.")
        if grant_type == "authorization_code":
            return self._grant_code(form)
        if grant_type == "refresh_token":
            return self._grant_refresh(form)
        if grant_type == DEVICE_GRANT:
            return self._grant_device(form)
        if grant_type == "client_credentials":
            if not self.client_secret:
                raise OAuthFailure(401, "invalid_client",
                                   "AADSTS7000218: The request body must contain the following parameter:"
                                   " 'client_assertion' or 'client_secret'.")
            # An app-only token: it acts for the mailbox the app was given access to (``user``).
            return self._issue(self.user, client_id, form.get("scope", ""), refresh=False, id_token=False)
        raise OAuthFailure(400, "unsupported_grant_type",
                           f"AADSTS70003: The app requested an unsupported grant type '{grant_type}'.")

    def _grant_code(self, form: dict[str, str]) -> dict[str, Any]:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.expires_at <= self.now():
            raise OAuthFailure(400, "invalid_grant",
                               "AADSTS70008: The provided authorization code or refresh token has expired due"
                               " to inactivity. Send a new interactive authorization request for this user"
                               " and resource.")
        if code.used:
            raise OAuthFailure(400, "invalid_grant", "AADSTS54005: OAuth2 Authorization code was already redeemed,"
                               " please retry with a new valid code or use an existing refresh token.")
        if code.client_id != form.get("client_id", code.client_id):
            raise OAuthFailure(400, "invalid_grant", "AADSTS700005: Provided Authorization Code is intended to use"
                               " against other tenant or application.")
        if form.get("redirect_uri", "") != code.redirect_uri:
            raise OAuthFailure(400, "invalid_grant", "AADSTS50011: The redirect URI does not match the one the"
                               " authorization code was issued for.")
        verifier = form.get("code_verifier", "")
        if not verifier:
            raise OAuthFailure(400, "invalid_request", "AADSTS900144: The request body must contain the"
                               " following parameter: 'code_verifier'.")
        if not secrets.compare_digest(pkce_challenge(verifier), code.challenge):
            raise OAuthFailure(400, "invalid_grant", "AADSTS501481: The Code_Verifier does not match the"
                               " code_challenge supplied in the authorization request.")
        code.used = True
        return self._issue(code.user, code.client_id, code.scope, refresh=True, id_token=True)

    def _grant_refresh(self, form: dict[str, str]) -> dict[str, Any]:
        text = form.get("refresh_token", "")
        token = self._tokens.get(text)
        if token is None or token.kind != "refresh" or not self._live(token):
            raise OAuthFailure(400, "invalid_grant",
                               "AADSTS700082: The refresh token has expired due to inactivity. The token was"
                               " issued on a date before the last sign-in and was inactive for 90.00:00:00.")
        if token.client_id != form.get("client_id", token.client_id):
            raise OAuthFailure(400, "invalid_grant", "AADSTS700005: The refresh token was issued to another"
                               " application.")
        scope = form.get("scope") or token.scope
        if self.rotate_refresh_tokens:
            if not self.replaced_refresh_tokens_live:
                token.revoked = True  # strict rotation: the old one stops working at once
            return self._issue(token.user, token.client_id, scope, refresh=True, id_token=True,
                               grant=token.grant)
        return self._issue(token.user, token.client_id, scope, refresh=False, id_token=True, grant=token.grant)

    def _grant_device(self, form: dict[str, str]) -> dict[str, Any]:
        device = self._devices.get(form.get("device_code", ""))
        if device is None or device.state == "used":
            raise OAuthFailure(400, "invalid_grant", "AADSTS70000: The provided value for the 'device_code'"
                               " parameter is not valid.")
        if device.expires_at <= self.now():
            raise OAuthFailure(400, "expired_token", "AADSTS70020: The provided value for the input parameter"
                               " 'device_code' is not valid. This device code has expired.")
        if device.state == "denied":
            raise OAuthFailure(400, "access_denied", "AADSTS70000: The user declined to authorize the"
                               " application.")
        if device.state == "pending":
            if self.slow_down_once and not device.slowed:
                device.slowed = True
                raise OAuthFailure(400, "slow_down", "AADSTS70016: Polling too fast; wait longer between"
                                   " requests.")
            raise OAuthFailure(400, "authorization_pending", "AADSTS70016: OAuth 2.0 device flow error."
                               " Authorization is pending. Continue polling.")
        device.state = "used"
        return self._issue(device.user, device.client_id, device.scope, refresh=True, id_token=True)

    # ---------------------------------------------------------------- /device

    def _device(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            client_id = form.get("client_id", "")
            if client_id != self.client_id:
                raise OAuthFailure(400, "invalid_client", _unknown_client(client_id))
            alphabet = string.ascii_uppercase + string.digits
            user_code = "".join(secrets.choice(alphabet) for _ in range(9))
            device_code = _random_token(200)
            self._devices[device_code] = _Device(user_code, client_id, form.get("scope", ""),
                                                 self.now() + self.device_expires_in)
            verification = self.base_url + "/devicelogin"
            return {
                "device_code": device_code, "user_code": user_code, "verification_uri": verification,
                "expires_in": self.device_expires_in, "interval": self.interval,
                "message": f"To sign in, use a web browser to open the page {verification} and enter the"
                f" code {user_code} to authenticate.",
            }

    # --------------------------------------------------- /introspect, /revoke

    def _introspect(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.introspections += 1
            if self.introspection_down:
                raise OAuthFailure(503, "temporarily_unavailable", "The service is down for maintenance.")
            token = self._tokens.get(form.get("token", ""))
            if token is None or token.kind != "access" or not self._live(token):
                return {"active": False}
            return {"active": True, "email": token.user, "username": token.user, "scope": token.scope,
                    "client_id": token.client_id, "token_type": "Bearer", "exp": int(token.expires_at)}

    def _revoke(self, form: dict[str, str]) -> None:
        """RFC 7009: revoking a refresh token ends its access tokens too; unknown tokens are fine."""
        with self._lock:
            token = self._tokens.get(form.get("token", ""))
            if token is None:
                return
            token.revoked = True
            if token.kind == "refresh":
                for other in self._tokens.values():
                    if other.grant == token.grant:
                        other.revoked = True


def _unknown_client(client_id: str) -> str:
    return (f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
            " This can happen if the application has not been installed by the administrator of the tenant"
            " or consented to by any user in the tenant.")


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    """Form or query parameters; RFC 6749 section 3.1: none may appear twice."""
    repeated = sorted(k for k, v in values.items() if len(v) > 1)
    if repeated:
        raise OAuthFailure(400, "invalid_request", f"AADSTS90015: Requested query string is too long or a"
                           f" parameter is repeated: {', '.join(repeated)}.")
    return {k: v[0] for k, v in values.items()}


def _handler_for(idp: FakeAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeAuthServer/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's output is not the place for an access log."""

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8")

        def _failure(self, failure: OAuthFailure) -> None:
            headers = {"WWW-Authenticate": 'Basic realm="token"'} if failure.status == 401 else None
            body = json.dumps(failure.body()).encode()
            self._send(failure.status, body, "application/json; charset=utf-8", headers)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            return _single(parse_qs(raw, keep_blank_values=True))

        def _basic(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.lower().startswith("basic "):
                return None
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OAuthFailure(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.") from None
            return unquote_plus(user), unquote_plus(password)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            try:
                if parts.path == "/authorize":
                    location = idp._authorize(_single(parse_qs(parts.query, keep_blank_values=True)))
                    self._send(302, b"", "text/plain", {"Location": location})
                elif parts.path == "/devicelogin":
                    self._send(200, b"<html><body>Enter the code.</body></html>", "text/html")
                else:
                    self._send(404, b"not found", "text/plain")
            except OAuthFailure as failure:
                page = f"<html><body><h1>Sign in failed</h1><p>{failure.description}</p></body></html>"
                self._send(failure.status, page.encode(), "text/html; charset=utf-8")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            try:
                form = self._form()
                if path == "/token":
                    self._json(200, idp._token(form, self._basic()))
                elif path == "/device":
                    self._json(200, idp._device(form))
                elif path == "/introspect":
                    self._json(200, idp._introspect(form))
                elif path == "/revoke":
                    idp._revoke(form)
                    self._send(200, b"", "text/plain")
                else:
                    self._send(404, b"not found", "text/plain")
            except OAuthFailure as failure:
                self._failure(failure)

    return Handler


class IntrospectionRelay:
    """A fixed introspection URL that passes each request on to whichever server is ``target`` now.

    A long-lived Dovecot is configured once with ``url``; each test points
    the relay at its own fresh :class:`FakeAuthServer`.  With no target
    every token is inactive.
    """

    def __init__(self) -> None:
        self.target: FakeAuthServer | None = None
        self._server: _ThreadedServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def start(self) -> Self:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet, like the server it stands for."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = relay.target
                if target is None:
                    status, answer = 200, json.dumps({"active": False}).encode()
                else:
                    request = urllib.request.Request(target.introspect_url, data=body, method="POST", headers={
                        "Content-Type": self.headers.get("Content-Type", "application/x-www-form-urlencoded")})
                    try:
                        with urllib.request.urlopen(request, timeout=10) as response:
                            status, answer = response.status, response.read()
                    except urllib.error.HTTPError as exc:
                        status, answer = exc.code, exc.read()
                        exc.close()
                    except OSError:
                        status, answer = 502, b'{"error":"bad_gateway"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = _ThreadedServer(Handler, "introspection-relay")
        self.port = self._server.port
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()


__all__ = ["DEVICE_GRANT", "FakeAuthServer", "IntrospectionRelay", "OAuthFailure", "pkce_challenge"]
