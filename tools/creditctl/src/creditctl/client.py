"""The services as creditctl sees them: four base URLs, one bearer token, and one error type
that carries the message to print and the exit code."""

from dataclasses import dataclass
from typing import Any, Literal

import httpx

Service = Literal["billing-events", "credit-control", "notifier", "gateway-adapter"]

# Exit codes a script can tell apart (typer's own usage errors exit 2).
EXIT_REJECTED = 1  # the service answered 4xx: the request was wrong or not allowed
EXIT_UNAVAILABLE = 3  # the service could not be reached or answered 5xx
EXIT_AUTH = 4  # 401/403: the token is missing, unknown or lacks the role


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_REJECTED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Endpoints:
    billing: str
    credit: str
    notifier: str
    gateway: str
    token: str
    timeout_s: float = 300.0

    def url(self, service: Service) -> str:
        return {"billing-events": self.billing, "credit-control": self.credit,
                "notifier": self.notifier, "gateway-adapter": self.gateway}[service]


class Api:
    """Synchronous on purpose: a command makes a handful of calls, one after the other."""

    def __init__(self, endpoints: Endpoints, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoints = endpoints
        self._http = httpx.Client(
            timeout=endpoints.timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {endpoints.token}"})

    def close(self) -> None:
        self._http.close()

    def get(self, service: Service, path: str, params: dict[str, Any] | None = None) -> Any:
        return _json(service, path, self.call(service, "GET", path, params=params))

    def post(self, service: Service, path: str, body: dict[str, Any]) -> Any:
        return _json(service, path, self.call(service, "POST", path, json=body))

    def call(self, service: Service, method: str, path: str, *, check: bool = True,
             **kwargs: Any) -> httpx.Response:
        """`check=False` hands a 4xx back instead of raising (a 5xx still raises)."""
        url = self.endpoints.url(service).rstrip("/") + path
        params = kwargs.pop("params", None)
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                f"{service} is not reachable at {self.endpoints.url(service)} "
                f"({type(exc).__name__}: {one_line(str(exc), 200)}). "
                f"Is it running (`make run`)? Set its URL with --{_option(service)} or "
                f"CREDITCTL_{_option(service).upper().replace('-', '_')}.",
                EXIT_UNAVAILABLE) from exc
        if response.status_code >= (400 if check else 500):
            raise error_for(service, method, path, response)
        return response


def _json(service: Service, path: str, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:  # a proxy's HTML page, a truncated body: not the service
        raise CliError(f"{service} {path} → {response.status_code}: the answer is not JSON "
                       f"({one_line(response.text, 120)!r}); is the URL the service's?",
                       EXIT_UNAVAILABLE) from exc


def _option(service: Service) -> str:
    return {"billing-events": "billing-url", "credit-control": "credit-url",
            "notifier": "notifier-url", "gateway-adapter": "gateway-url"}[service]


def error_for(service: Service, method: str, path: str, response: httpx.Response) -> CliError:
    """The service's own error body in one line (its code, message and each problem's
    field): it says what was wrong. The exit code tells the kind of failure apart."""
    where = f"{service} {method} {path} → {response.status_code}"
    said = error_text(response)
    if response.status_code == 401:
        return CliError(f"{where}: the token was refused ({said}); set CREDITCTL_TOKEN or "
                        "--token", EXIT_AUTH)
    if response.status_code == 403:
        return CliError(f"{where}: this token's role may not do that ({said})", EXIT_AUTH)
    if response.status_code >= 500:
        return CliError(f"{where}: the service failed ({said}); see its log", EXIT_UNAVAILABLE)
    return CliError(f"{where}: {said}", EXIT_REJECTED)


MAX_ERROR_TEXT = 400


def error_text(response: httpx.Response) -> str:
    """`{"error", "message", "problems"}` as "error: message; field: message; …", or the
    body's text, on one line and at most MAX_ERROR_TEXT characters."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("error" in body or "message" in body):
        parts = [": ".join(str(body[k]) for k in ("error", "message") if body.get(k))]
        parts += [f"{p.get('field')}: {p.get('message')}" for p in body.get("problems") or []
                  if isinstance(p, dict)]
        text = "; ".join(part for part in parts if part)
    else:
        text = response.text.strip() or "(no body)"
    return one_line(text, MAX_ERROR_TEXT)


def one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def is_missing_route(response: httpx.Response) -> bool:
    """FastAPI's answer for a path no route matches (as opposed to a 404 a route raised
    about its own data, which carries an id or a specific message)."""
    if response.status_code != 404:
        return False
    try:
        body = response.json()
    except ValueError:
        return True
    return isinstance(body, dict) and body.get("message") == "Not Found"
