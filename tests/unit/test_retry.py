"""``common.retry`` on a fake clock: attempts, back-off, deadline, Retry-After, rate budget."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from common.retry import Policy, RateBudget, retry_after, token_key
from tests.unit.test_registry import Clock  # sleeping advances it; every wait is recorded


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    def close(self) -> None:
        self.closed = True


def script(*outcomes: object):
    """A send() that plays ``outcomes`` in turn: answers are returned, exceptions raised."""
    calls: list[object] = []

    def send() -> object:
        outcome = outcomes[min(len(calls), len(outcomes) - 1)]
        calls.append(outcome)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    send.calls = calls  # type: ignore[attr-defined]
    return send


def test_back_off_doubles_up_to_the_cap() -> None:
    policy = Policy(base=0.5, cap=8.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_retried_status_is_sent_again_until_the_attempts_are_spent() -> None:
    clock = Clock()
    send = script(Answer(503))
    answer = Policy(attempts=4, base=0.5, cap=8.0).run(send, sleep=clock.sleep, clock=clock)
    assert answer.status_code == 503 and len(send.calls) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_a_good_answer_ends_the_loop_and_bad_ones_are_closed() -> None:
    clock = Clock()
    first, ok = Answer(502), Answer(200)
    answer = Policy().run(script(first, ok), sleep=clock.sleep, clock=clock)
    assert answer is ok and first.closed and not ok.closed


def test_status_waits_fix_the_wait_per_status() -> None:
    clock = Clock()
    policy = Policy(status_waits={503: 1.0, 502: 0.5})
    policy.run(script(Answer(503), Answer(502), Answer(200)), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [1.0, 0.5]


def test_exceptions_are_retried_then_the_last_one_raised() -> None:
    clock = Clock()
    send = script(ConnectionError("a"), ConnectionError("b"), ConnectionError("c"))
    with pytest.raises(ConnectionError, match="c"):
        Policy(exceptions=(ConnectionError,)).run(send, sleep=clock.sleep, clock=clock)
    assert len(send.calls) == 3 and clock.sleeps == [0.25, 0.5]


def test_other_exceptions_pass_at_once() -> None:
    clock = Clock()
    send = script(ValueError("no"))
    with pytest.raises(ValueError):
        Policy(exceptions=(ConnectionError,)).run(send, sleep=clock.sleep, clock=clock)
    assert len(send.calls) == 1 and clock.sleeps == []


@pytest.mark.parametrize(("idempotent", "replayable"), [(False, True), (True, False)])
def test_non_idempotent_or_unreplayable_calls_are_not_retried(idempotent, replayable) -> None:
    clock = Clock()
    policy = Policy(exceptions=(ConnectionError,))
    send = script(Answer(503))
    run = {"sleep": clock.sleep, "clock": clock, "idempotent": idempotent, "replayable": replayable}
    assert policy.run(send, **run).status_code == 503
    failing = script(ConnectionError())
    with pytest.raises(ConnectionError):
        policy.run(failing, **run)
    assert len(send.calls) == len(failing.calls) == 1 and clock.sleeps == []


def test_429_is_waited_out_for_replayable_calls_even_if_not_idempotent() -> None:
    clock = Clock()
    send = script(Answer(429, {"Retry-After": "3"}), Answer(201))
    assert Policy().run(send, sleep=clock.sleep, clock=clock, idempotent=False).status_code == 201
    assert clock.sleeps == [3.0]
    unreplayable = script(Answer(429, {"Retry-After": "3"}))
    assert Policy().run(unreplayable, sleep=clock.sleep, clock=clock, replayable=False).status_code
    assert len(unreplayable.calls) == 1


def test_429_beyond_max_wait_is_kept_and_without_retry_after_waits_rate_wait() -> None:
    clock = Clock()
    long = script(Answer(429, {"Retry-After": "3600"}))
    assert Policy(max_wait=60).run(long, sleep=clock.sleep, clock=clock).status_code == 429
    assert len(long.calls) == 1 and clock.sleeps == []
    bare = script(Answer(429), Answer(200))
    Policy(rate_wait=1.0).run(bare, sleep=clock.sleep, clock=clock)
    Policy(base=0.5).run(script(Answer(429), Answer(200)), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [1.0, 0.5]


def test_retry_after_on_a_retried_status_replaces_the_back_off() -> None:
    clock = Clock()
    Policy().run(
        script(Answer(503, {"Retry-After": "2"}), Answer(200)), sleep=clock.sleep, clock=clock
    )
    Policy(max_wait=5).run(
        script(Answer(503, {"Retry-After": "99"}), Answer(200)), sleep=clock.sleep, clock=clock
    )
    assert clock.sleeps == [2.0, 0.25]


def test_deadline_bounds_the_waits_and_ends_the_loop() -> None:
    clock = Clock()
    send = script(ConnectionError())
    policy = Policy(attempts=None, base=0.25, cap=1.0, deadline=3.0, exceptions=(ConnectionError,))
    with pytest.raises(ConnectionError):
        policy.run(send, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [0.25, 0.5, 1.0, 1.0, 0.25]
    assert clock.now == pytest.approx(3.0) and len(send.calls) == 6


def test_results_without_a_status_are_returned_as_they_are() -> None:
    assert Policy().run(lambda: "registered", sleep=Clock().sleep) == "registered"


def test_retry_after_reads_seconds_dates_and_a_cap() -> None:
    assert retry_after("5", 0) == 5.0
    assert retry_after(" 7 ", 0) == 7.0
    assert retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4.0) == 6.0
    assert retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 20.0) == 0.0  # past: at once
    assert retry_after("120", 0, cap=60) is None
    assert retry_after("60", 0, cap=60) == 60.0
    for bad in (None, "", "soon", "-1", "1.5", "9" * 50):
        assert retry_after(bad, 0) is None


def test_rate_budget_paces_when_remaining_is_low() -> None:
    budget = RateBudget(reserve=1, max_wait=60)
    key = token_key("https://zenodo.org", "secret-token")
    assert budget.pause(key, 100.0) == 0.0  # nothing known yet
    budget.note(key, {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "3",
                      "X-RateLimit-Reset": "30"}, 100.0)  # fmt: skip
    assert [budget.pause(key, 100.0) for _ in range(4)] == [0.0, 0.0, 30.0, 30.0]
    assert budget.pause(key, 131.0) == 0.0  # the window is over: the budget is forgotten


def test_rate_budget_reads_unix_reset_caps_the_wait_and_ignores_partial_headers() -> None:
    budget = RateBudget(reserve=0, max_wait=10)
    budget.note(
        "k", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000100"}, 1_700_000_000
    )
    assert budget.pause("k", 1_700_000_000) == 10.0
    budget.note("other", {"X-RateLimit-Remaining": "0"}, 0)  # no Reset: nothing learned
    assert budget.pause("other", 0) == 0.0
    budget.note("limit", {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "5",
                          "X-RateLimit-Reset": "5"}, 0)  # fmt: skip
    assert budget.pause("limit", 0) == 5.0  # Remaining is never above Limit


def test_budget_is_fed_and_consulted_by_the_policy() -> None:
    clock = Clock()
    budget = RateBudget(reserve=0)
    policy = Policy(budget=budget)
    low = Answer(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"})
    policy.run(script(low), sleep=clock.sleep, clock=clock, key="svc")
    policy.run(script(Answer(200)), sleep=clock.sleep, clock=clock, key="svc")
    assert clock.sleeps == [5.0]


def test_budget_keys_hold_no_token_and_tell_tokens_apart() -> None:
    a, b = token_key("svc", "token-aaaa"), token_key("svc", "token-bbbb")
    assert a != b and "token-aaaa" not in a and a.startswith("svc:")


def test_budget_is_thread_safe() -> None:
    budget = RateBudget(reserve=0)
    budget.note("k", {"X-RateLimit-Remaining": "1000", "X-RateLimit-Reset": "60"}, 0)
    waits: list[float] = []

    def spend() -> None:
        for _ in range(100):
            waits.append(budget.pause("k", 0))

    threads = [threading.Thread(target=spend) for _ in range(11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert waits.count(0.0) == 1000 and waits.count(60.0) == 100  # exactly 1000 went at once
