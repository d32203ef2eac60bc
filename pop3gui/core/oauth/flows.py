"""The OAuth2 grants pop3gui uses, over HTTPS: browser sign-in, device sign-in, refresh, app-only.

Authlib's protocol layer builds and parses the messages (the authorization
URL with its PKCE challenge, token requests, the redirect's parameters);
httpx carries them.  Authlib's own HTTP integrations are left out on
purpose: they are being moved to another HTTP library, and what we need of
them is four POSTs.

* Browser (RFC 6749 §4.1 + RFC 7636 PKCE, RFC 8252 loopback redirect): a
  one-shot HTTP listener on 127.0.0.1 receives the redirect.
* Device (RFC 8628): show the code, poll at the interval the server asks,
  slow down when told, stop when the code expires.
* Refresh: the provider may (Microsoft always does) return a new refresh token.
* Client credentials: an app signing in as itself (Microsoft's POP.AccessAsApp).

Every failure becomes an :class:`~pop3gui.core.errors.OAuthError` subclass
with its cause and fix; no token or secret ever appears in one.

httpx and Authlib are imported by the first grant: a runner whose accounts
all log in with passwords never needs them, and they were a fifth of its
start-up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pop3gui.core.errors import (
    OAuthClientInvalid,
    OAuthConsentMissing,
    OAuthError,
    OAuthProviderUnreachable,
    SignInNeeded,
)
from pop3gui.core.oauth.endpoints import Endpoints

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Tokens:
    """A token endpoint's answer.  ``refresh_token`` is "" when the provider kept the old one."""

    access_token: str
    expires_at: float
    refresh_token: str = ""
    scope: str = ""
    identity: str = ""

    def __repr__(self) -> str:  # never print a token by accident
        return f"Tokens(identity={self.identity!r}, expires_at={self.expires_at!r}, scope={self.scope!r})"


@dataclass(frozen=True)
class DeviceCode:
    """What the user must do to finish a device sign-in."""

    verification_uri: str
    user_code: str
    expires_in: float
    message: str = ""  # the provider's own instructions, when it gives them


async def browser_sign_in(ends: Endpoints, client_id: str, open_page: Callable[[str], object], *,
                          timeout: float = 300.0, client_secret: str = "") -> Tokens:
    """Authorization code with PKCE; *open_page* shows the sign-in page (a browser, or a test)."""
    from authlib.common.security import generate_token
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = generate_token(64)
    state = generate_token(24)
    received: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    handlers: set[asyncio.Task[None]] = set()

    def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(_one_redirect(reader, writer, received, state))
        handlers.add(task)
        task.add_done_callback(handlers.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        redirect_uri = f"http://127.0.0.1:{port}/"
        url = prepare_grant_uri(ends.authorize_url, client_id, "code", redirect_uri=redirect_uri,
                                scope=" ".join(ends.scopes), state=state,
                                code_challenge=create_s256_code_challenge(verifier),
                                code_challenge_method="S256", **ends.authorize_params)
        opened = open_page(url)
        if isinstance(opened, Awaitable):
            await opened
        try:
            target = await asyncio.wait_for(received, timeout)
        except TimeoutError:
            raise SignInNeeded("the sign-in was not finished in time",
                               cause=f"No answer came back from the sign-in page within {timeout:.0f} seconds.",
                               fix="Run the sign-in again and finish it in the browser; or use --device.") from None
    finally:
        server.close()
        for task in list(handlers):  # a browser's idle extra connection must not outlive the sign-in
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    params = _redirect_params(target, state)
    return await _token_request(ends.token_url, _with_secret({
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect_uri,
        "client_id": client_id, "code_verifier": verifier}, client_secret))


async def device_sign_in(ends: Endpoints, client_id: str, show: Callable[[DeviceCode], object], *,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, client_secret: str = "") -> Tokens:
    """The device authorization grant: the user signs in elsewhere with a short code."""
    if not ends.device_url:
        raise OAuthClientInvalid("this provider has no device sign-in", cause="No device_url is known for it.",
                                 fix="Sign in with the browser (without --device), or add device_url to the "
                                 "[[oauth_provider]].")
    answer = await _post(ends.device_url, {"client_id": client_id, "scope": " ".join(ends.scopes)})
    try:
        device_code = str(answer["device_code"])
        code = DeviceCode(str(answer.get("verification_uri") or answer.get("verification_url") or ""),
                          str(answer["user_code"]), float(answer.get("expires_in", 900)),
                          str(answer.get("message", "")))
        interval = float(answer.get("interval", 5))
    except (KeyError, TypeError, ValueError) as exc:
        raise _odd_answer(ends.device_url) from exc
    shown = show(code)
    if isinstance(shown, Awaitable):
        await shown
    deadline = time.monotonic() + code.expires_in
    while True:
        await sleep(interval)
        try:
            return await _token_request(ends.token_url, _with_secret(
                {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}, client_secret))
        except _Pending as pending:
            if pending.slow_down:
                interval += 5  # RFC 8628 §3.5
        if time.monotonic() >= deadline:
            raise SignInNeeded("the device sign-in code expired before it was used",
                               cause=f"Nobody entered the code {code.user_code} at {code.verification_uri} in time.",
                               fix="Run `pop3gui auth login ACCOUNT --device` again and enter the new code.")


async def refresh(ends: Endpoints, client_id: str, refresh_token: str, *, client_secret: str = "") -> Tokens:
    """A new access token (and, with most providers, a new refresh token)."""
    return await _token_request(ends.token_url, _with_secret(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
         "scope": " ".join(ends.scopes)}, client_secret))


def _with_secret(form: dict[str, str], client_secret: str) -> dict[str, str]:
    """Installed apps of some providers (Google's Desktop clients) send their client secret too."""
    return {**form, "client_secret": client_secret} if client_secret else form


async def app_token(ends: Endpoints, client_id: str, secret: str) -> Tokens:
    """Client credentials: the app signs in as itself with its secret."""
    return await _token_request(ends.token_url, {"grant_type": "client_credentials", "client_id": client_id,
                                                 "client_secret": secret, "scope": " ".join(ends.scopes)})


# --- the loopback redirect ------------------------------------------------------------------------

async def _one_redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        received: asyncio.Future[str], state: str) -> None:
    """Answer one GET; hand its target to the waiting sign-in only when it carries this sign-in's state.

    Any local program can reach the port: a request without the right state is
    refused (400) and the sign-in keeps waiting for the browser's.
    """
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        target = request.split(b"\r\n", 1)[0].split(b" ")[1].decode("ascii", "replace")
        from urllib.parse import parse_qs

        query = parse_qs(urlsplit(target).query)
        ours = query.get("state", [""])[0] == state and ("code" in query or "error" in query)
        if ours:
            body, status = ("<html><body><h3>pop3gui: you can close this window.</h3>"
                            "<p>The sign-in went back to pop3gui.</p></body></html>"), b"200 OK"
        else:
            body, status = "<html><body>Not a pop3gui sign-in.</body></html>", b"400 Bad Request"
        data = body.encode()
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close"
                     b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        await writer.drain()
        if ours and not received.done():
            received.set_result(target)
    except (OSError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
            asyncio.CancelledError):
        pass  # a stray, broken or idle request, or the sign-in ended: nothing to hand on
    finally:
        writer.close()


def _redirect_params(target: str, state: str) -> dict[str, str]:
    from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response

    query = urlsplit(target).query
    if "error=" in query:
        from urllib.parse import parse_qs

        params = {k: v[0] for k, v in parse_qs(query).items()}
        raise _oauth_error(params.get("error", ""), params.get("error_description", ""))
    try:
        return dict(parse_authorization_code_response("http://127.0.0.1/?" + query, state=state))
    except Exception as exc:  # noqa: BLE001 - authlib raises its own classes for a missing code or state
        raise OAuthError("the sign-in page sent back an answer that does not belong to this sign-in",
                         cause=f"The redirect lacked the code or carried another state ({type(exc).__name__}).",
                         fix="Run the sign-in again; close other sign-in pages first.") from None


# --- the token endpoint -------------------------------------------------------------------------

class _Pending(Exception):
    """The device sign-in is not finished yet."""

    def __init__(self, slow_down: bool) -> None:
        super().__init__("authorization pending")
        self.slow_down = slow_down


async def _token_request(url: str, form: dict[str, str]) -> Tokens:
    answer = await _post(url, form, token_endpoint=True)
    try:
        access = str(answer["access_token"])
        expires_in = float(answer.get("expires_in", 3600))
    except (KeyError, TypeError, ValueError) as exc:
        raise _odd_answer(url) from exc
    return Tokens(access, time.time() + expires_in, str(answer.get("refresh_token", "")),
                  str(answer.get("scope", "")), _identity(str(answer.get("id_token", ""))))


async def _post(url: str, form: dict[str, str], *, token_endpoint: bool = False) -> dict[str, Any]:
    import httpx

    try:
        # An office proxy from the environment carries the provider's traffic, never a loopback one's.
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False,
                                     trust_env=not _is_loopback(url)) as http:
            response = await http.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OAuthProviderUnreachable(
            f"cannot reach the sign-in service at {_host(url)}: {type(exc).__name__}",
            cause="The network, a proxy or the provider is down, or the address is wrong.",
            fix="Check the connection to the Internet and the provider's URLs; mail stays on the server "
            "and is fetched once sign-in works.") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise _odd_answer(url)
    if response.status_code >= 400 or "error" in answer:
        error = str(answer.get("error", ""))
        if token_endpoint and error in ("authorization_pending", "slow_down"):
            raise _Pending(error == "slow_down")
        raise _oauth_error(error, str(answer.get("error_description", "")))
    return answer


def _identity(id_token: str) -> str:
    """Who signed in, read from the id token's claims (shown, never trusted for access)."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("email") or claims.get("preferred_username") or claims.get("upn") or "")
    except (IndexError, ValueError, AttributeError):
        return ""


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _odd_answer(url: str) -> OAuthError:
    return OAuthError(f"the sign-in service at {_host(url)} gave an answer pop3gui cannot read",
                      cause="It is not an OAuth2 JSON answer: a wrong URL, a proxy's page, or an outage.",
                      fix="Check the provider's URLs in the [[oauth_provider]]; try again later.")


_ERROR_CODE = re.compile(r"[a-z_]{1,64}")  # RFC 6749 error codes are short lower-case words
_REFERENCE = re.compile(r"\bAADSTS\d{4,9}\b")

# Microsoft's AADSTS codes and Google's words for the common failures, with what the admin does about them.
_KNOWN: tuple[tuple[str, type[OAuthError], str, str], ...] = (
    ("AADSTS700082", SignInNeeded, "The sign-in expired: it was not used for 90 days.",
     "Sign in again with `pop3gui auth login ACCOUNT`."),
    ("AADSTS50173", SignInNeeded, "The sign-in was revoked, for instance after a password change.",
     "Sign in again with `pop3gui auth login ACCOUNT`."),
    ("AADSTS65001", OAuthConsentMissing, "Nobody has consented to the app's access to this mailbox.",
     "Sign in again and accept the permissions, or have the tenant admin grant admin consent to the app "
     "(Entra ID: App registrations, API permissions, Grant admin consent)."),
    ("AADSTS90094", OAuthConsentMissing, "The tenant lets only an admin consent to these permissions.",
     "Have the tenant admin grant admin consent to the app (Entra ID: API permissions)."),
    ("AADSTS700016", OAuthClientInvalid, "The tenant does not know this app (client_id).",
     "Check client_id and tenant in the [[oauth_provider]] against the app registration."),
    ("AADSTS90002", OAuthClientInvalid, "The tenant in the [[oauth_provider]] does not exist.",
     "Set tenant to the tenant's domain or id (or \"organizations\" / \"consumers\")."),
    ("AADSTS7000215", OAuthClientInvalid, "The app's client secret is wrong or expired.",
     "Create a new client secret in the app registration and store it with "
     "`pop3gui secret set --oauth-client PROVIDER`."),
    ("AADSTS7000218", OAuthClientInvalid, "The app is not a public client, so it would need a secret.",
     "In the app registration set Authentication, Allow public client flows to Yes."),
    ("expired or revoked", SignInNeeded, "The provider no longer honours the sign-in (Google: apps in "
     "\"Testing\" get sign-ins that expire after 7 days).",
     "Sign in again with `pop3gui auth login ACCOUNT`; publish the Google app to keep sign-ins."),
)


def _oauth_error(error: str, description: str) -> OAuthError:
    """One of our errors for an OAuth2 error answer (RFC 6749 §5.2, RFC 8628 §3.5).

    The provider's own words are never shown: a description may echo what was
    sent (a token, a code).  Only the error code, if it looks like one, and the
    provider's reference codes (AADSTS...) go into the message.
    """
    error = error if _ERROR_CODE.fullmatch(error) else "an unreadable error"
    codes = ", ".join(dict.fromkeys(_REFERENCE.findall(description)))
    said = f"{error} ({codes})" if codes else error
    for marker, cls, cause, fix in _KNOWN:
        if marker.lower() in description.lower():
            return cls(f"the sign-in service refused: {said}", cause=cause, fix=fix)
    if error in ("invalid_grant", "expired_token"):
        return SignInNeeded(f"the sign-in is no longer valid: {said}",
                            cause="The provider no longer honours the stored sign-in (expired, revoked, or the "
                            "password changed).", fix="Sign in again with `pop3gui auth login ACCOUNT`.")
    if error in ("access_denied", "consent_required", "interaction_required"):
        return OAuthConsentMissing(f"the sign-in was refused: {said}",
                                   cause="The user declined, or the app lacks consent for the mail permissions.",
                                   fix="Sign in again and accept; or have the admin grant consent to the app.")
    if error in ("invalid_client", "unauthorized_client", "invalid_request", "unsupported_grant_type"):
        return OAuthClientInvalid(f"the sign-in service does not accept this app: {said}",
                                  cause="The client id, tenant or secret does not match the app registration, or "
                                  "the app does not allow this kind of sign-in.",
                                  fix="Check the [[oauth_provider]] against the app registration (docs/oauth.md).")
    if error == "invalid_scope":
        return OAuthConsentMissing(f"the sign-in service refused the permissions asked for: {said}",
                                   cause="The app registration does not offer the mail permission requested.",
                                   fix="Add the permission to the app registration (docs/oauth.md) or correct "
                                   "scopes in the [[oauth_provider]].")
    return OAuthError(f"the sign-in service refused: {said or 'no reason given'}",
                      cause="The provider answered with an error pop3gui does not know.",
                      fix="Try again later; if it persists, sign in again with `pop3gui auth login ACCOUNT`.")
