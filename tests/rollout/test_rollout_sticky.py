"""Sticky users through a rollout: a real turnout issuing the cookie, 200 clients each keeping
its own, real HTTP. While a rollout progresses no user ever goes back from the canary to the
stable pool; when one is aborted every user is on the stable pool at their next request."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from admin.admin_support import BackendLoop, api, backend_loop
from traffic_support import Switchable, start, wait_for_rollout

from helpers import ProxyProcess, config, proxy_process

COOKIE = "turnout-id"
CLIENTS = 200
THREADS = 4

Setup = tuple[ProxyProcess, Switchable, Switchable]


@pytest.fixture
def sticky_setup() -> Iterator[Setup]:
    with backend_loop() as loop:
        yield from _sticky(loop)


def _sticky(loop: BackendLoop) -> Iterator[Setup]:
    stable, stable_url = start(loop, "stable")
    canary, canary_url = start(loop, "canary")
    data = config(
        {"stable": [stable_url], "canary": [canary_url]},
        {"web": {"weights": {"stable": 100, "canary": 0}, "sticky": {"cookie": COOKIE}}},
    )
    with proxy_process(data, workers=2) as proxy:
        yield proxy, stable, canary


class Users:
    """`CLIENTS` users, each with the cookie turnout issued to it, sending requests in turn
    from `THREADS` threads (one keep-alive connection each, so one worker per user); the pool
    each request of each user reached, in order."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: list[str] = []
        self.seen: list[list[str]] = [[] for _ in range(CLIENTS)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []

    def issue(self) -> None:
        """Each user's first request, without a cookie: turnout makes one up and sets it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for user in range(CLIENTS):
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode()
                jar: SimpleCookie = SimpleCookie(response.getheader("Set-Cookie") or "")
                assert COOKIE in jar, response.getheaders()
                self.cookies.append(jar[COOKIE].value)
                self.seen[user].append(body.split()[0])
        finally:
            connection.close()
        assert len(set(self.cookies)) == CLIENTS  # every user got a cookie of its own

    def once(self, connection: http.client.HTTPConnection, user: int) -> None:
        connection.request("GET", "/", headers={"Cookie": f"{COOKIE}={self.cookies[user]}"})
        response = connection.getresponse()
        body = response.read().decode()
        # A user with a cookie is never issued another one.
        assert response.getheader("Set-Cookie") is None
        self.seen[user].append(body.split()[0])

    def round(self) -> None:
        """One request of every user, in turn."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for user in range(CLIENTS):
                self.once(connection, user)
        finally:
            connection.close()

    def _loop(self, index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self._stop.is_set():
                for user in range(index, CLIENTS, THREADS):
                    self.once(connection, user)
        except BaseException as failure:  # the test thread reports it
            self.failures.append(failure)
        finally:
            connection.close()

    def __enter__(self) -> Users:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(THREADS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        assert not self.failures, self.failures

    def on(self, pool: str) -> int:
        """Users whose latest request reached `pool`."""
        return sum(1 for seen in self.seen if seen[-1] == pool)


def test_sticky_users_only_move_into_the_canary_and_all_return_at_an_abort(
    sticky_setup: Setup,
) -> None:
    proxy, _, canary = sticky_setup
    admin = api(proxy)
    users = Users(proxy.port)
    users.issue()
    assert users.on("stable") == CLIENTS
    body = {
        "canary": "canary",
        "steps": [5, 25, 50, 100],
        "stepTime": 0.3,
        "judge": {"minRequests": 20},
    }
    with users:
        admin.call("POST", "/v1/routes/web/rollout", body).ok(201)
        done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 30)
        time.sleep(0.2)  # a few requests at 100 %
    assert done["phase"] == "promoted", done
    for user, seen in enumerate(users.seen):
        first_canary = seen.index("canary")  # everyone reached it: the last step is 100 %
        assert set(seen[first_canary:]) == {"canary"}, (user, seen)
    # Users moved in over several steps, not all at once at the end: the steps were real.
    entered = Counter(seen.index("canary") for seen in users.seen)
    assert len(entered) >= 3, entered
    assert max(entered.values()) < CLIENTS * 0.6, entered

    # A second rollout, held at 25 % and then aborted by the judge.
    body = {"canary": "canary", "steps": [25, 50], "stepTime": 60, "judge": {"minRequests": 20}}
    admin.call("POST", "/v1/routes/web/rollout", body).ok(201)
    users.round()
    at_25 = users.on("canary")
    assert 20 <= at_25 <= 80, at_25  # about a quarter of the users: the abort has users to move
    canary.failing = True
    with users:
        done = wait_for_rollout(admin, "web", lambda s: s["phase"] != "progressing", 20)
    assert (done["phase"], done["cause"]) == ("aborted", "errors"), done
    users.round()
    assert users.on("stable") == CLIENTS, [seen[-3:] for seen in users.seen]
