"""HTTP for REST sources (httpx, tenacity): authentication, timeouts, a request rate, retries.

A request answered 429 or 5xx, refused, cut off or timed out is tried again, up to the
source's `retry: {attempts}`, after a random wait up to `backoff` × 2^(try − 1) (full
jitter), at most `max_delay`; a `Retry-After` the server sends (seconds or an HTTP date) is
waited at least, up to `max_delay`. Any other 4xx fails at once. When the tries run out the
error names the URL (never a credential: an API key sent in the query is left out of it),
the status or failure, and the tries made.

`rate_limit:` spaces the requests of a source evenly (`10/s`: one every 100 ms), over every
object of the source in the process.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import httpx
import tenacity

from penstock.catalog.orchestration import seconds
from penstock.catalog.rest import ApiKeyAuth, BasicAuth, BearerAuth, RestSource, rate_per_second
from penstock.errors import SourceError, TransientError, first_line
from penstock.secrets import redact

Params = Mapping[str, str | int | float | bool]
_STATUS_WORDS = {401: "authentication failed", 403: "access denied"}


class _Retryable(Exception):
    """A failure worth another try: the status (None: no answer) and what the server asked."""

    def __init__(self, what: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(what)
        self.what = what
        self.status = status
        self.retry_after = retry_after


class RateLimiter:
    """Spaces requests `1 / per_second` apart (thread-safe)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, sleep: Callable[[float], None]) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            sleep(start - now)


_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(source: str, rate: str) -> RateLimiter:
    with _limiters_lock:
        found = _limiters.get((source, rate))
        if found is None:
            found = _limiters[(source, rate)] = RateLimiter(rate_per_second(rate))
        return found


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds from now (delta-seconds or an HTTP date), None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RestClient:
    """One source's HTTP client (a context manager): `get` answers a 2xx response or raises
    `SourceError` / `TransientError` in one line."""

    def __init__(
        self, name: str, spec: RestSource, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.name = name
        self.spec = spec
        self.sleep = sleep
        self.policy = spec.request_retry
        self.limiter = limiter_for(name, spec.rate_limit) if spec.rate_limit else None
        self.first_answer_s: float | None = None  # how long the first answer took
        connect, read = spec.timeouts
        headers = dict(spec.headers)
        headers.setdefault("Accept", "application/json")
        auth: httpx.Auth | None = None
        self.query_auth: dict[str, str] = {}
        match spec.auth:
            case BearerAuth(token=token):
                headers["Authorization"] = f"Bearer {token}"
            case BasicAuth(username=username, password=password):
                auth = httpx.BasicAuth(username, password)
            case ApiKeyAuth(name=key, value=value, in_="header"):
                headers[key] = value
            case ApiKeyAuth(name=key, value=value):
                self.query_auth[key] = value
        self.origin = _origin(httpx.URL(spec.base_url))
        self.client = httpx.Client(
            timeout=httpx.Timeout(read, connect=connect, pool=connect),
            headers=headers,
            auth=auth,
            verify=spec.verify,
            follow_redirects=True,
            event_hooks={"request": [self._same_origin]},
        )

    def _same_origin(self, request: httpx.Request) -> None:
        """Credentials go to the base_url's host only: a redirect elsewhere is refused."""
        if _origin(request.url) != self.origin:
            raise SourceError(
                redact(
                    f"source '{self.name}': a request was sent on to another host "
                    f"({self.shown(str(request.url.copy_with(query=None)))}); penstock sends the "
                    "source's credentials to its base_url's host only"
                ),
                source=self.name,
            )

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def shown(self, url: str, params: Params | None = None) -> str:
        """`url` with `params` as logs and errors may show it (no query credential)."""
        target = httpx.URL(url)
        text = str(target.copy_merge_params(dict(params)) if params else target)
        return redact(text)

    def get(self, url: str, params: Params | None = None, *, where: str = "") -> httpx.Response:
        """GET `url` (with `params`), tried per the source's policy. `where` says which page
        it is for errors."""
        shown = self.shown(url, params) + where
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.policy.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send(url, params, shown)
        except _Retryable as exc:
            tries = self.policy.attempts
            raise TransientError(
                redact(
                    f"source '{self.name}': GET {shown}: {exc.what}"
                    + (f" after {tries} tries" if tries > 1 else "")
                ),
                source=self.name,
                url=shown,
                status=exc.status,
            ) from None
        raise AssertionError("unreachable")  # tenacity returns or raises above

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failed = state.attempt_number
        jitter = self.policy.delay(failed)
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.retry_after if isinstance(exc, _Retryable) else None
        wait = jitter if asked is None else max(jitter, asked)
        return min(wait, seconds(self.policy.max_delay))

    def _send(self, url: str, params: Params | None, shown: str) -> httpx.Response:
        if self.limiter is not None:
            self.limiter.wait(self.sleep)
        target = httpx.URL(url)  # params join the URL's own query (a next page's link)
        query = {**(params or {}), **self.query_auth}
        if query:
            target = target.copy_merge_params(query)
        started = time.monotonic()
        try:
            response = self.client.get(target)
        except httpx.TimeoutException as exc:
            phase = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting"
            limit = self.spec.connect_timeout if phase == "connecting" else self.spec.read_timeout
            raise _Retryable(f"timed out {phase} ({limit})", None, None) from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"no answer: {redact(first_line(exc))}", None, None) from exc
        if self.first_answer_s is None:
            self.first_answer_s = time.monotonic() - started
        status = response.status_code
        if status == 429 or status >= 500:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            raise _Retryable(_answered(response), status, asked)
        if status >= 400:
            word = _STATUS_WORDS.get(status)
            raise SourceError(
                redact(
                    f"source '{self.name}': GET {shown}: {_answered(response)}"
                    + (f" ({word}: check the source's auth:)" if word else "")
                ),
                source=self.name,
                url=shown,
                status=status,
            )
        return response


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _answered(response: httpx.Response) -> str:
    phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
    return f"answered {response.status_code}{phrase}"
