"""Form tokens for the dashboard (cross-site request forgery).

The session cookie is SameSite=Strict already; the form token is the second lock, so a page
of another site (or a link in a mail) cannot make a signed-in browser take an action.

- Signed in: every action form carries `csrf` = HMAC-SHA256 keyed by the session's own token.
  Only someone who holds the token (HttpOnly: no script reads it) can make it, it is the same
  on every instance of the service (nothing stored), and signing out or another token changes
  it.
- Signing in (no session yet): the form and a short-lived cookie carry the same random value
  (double submit), so another site cannot sign a browser in under its own token.
"""

import hashlib
import hmac
import secrets

FIELD = "csrf"
SIGNIN_COOKIE = "creditctl_signin"
_PURPOSE = b"creditctl dashboard form v1"


def session_token(session: str) -> str:
    """The form token of a signed-in session (the token it presents)."""
    return hmac.new(session.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def new_signin_nonce() -> str:
    return secrets.token_hex(16)


def signin_form_ok(cookie: str | None, given: str | None) -> bool:
    return bool(cookie) and bool(given) and hmac.compare_digest(cookie or "", given or "")
