"""The fake Zenodo's rate limiter is faithful: fixed windows per token, the three headers on
every answer, a 429 with Retry-After past the limit that reads no body and changes nothing."""

from __future__ import annotations

import requests

from tests.support.fake_zenodo import FakeZenodo
from tests.support.servers import ServerThread


def test_fixed_windows_headers_and_a_refusal_without_effect(tmp_path) -> None:
    fake = FakeZenodo(tmp_path / "z")
    fake.add_token("tok-limit")
    fake.rate_limit, fake.rate_window = 3, 60.0
    now = [1_000_020.0]
    fake.clock = lambda: now[0]
    server = ServerThread(fake.app).start()
    auth = {"Authorization": "Bearer tok-limit"}
    url = server.url + "/api/deposit/depositions"
    try:
        start = now[0] - now[0] % 60
        answers = [requests.post(url, json={}, headers=auth, timeout=10) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 201]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
        assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"3"}
        assert {a.headers["X-RateLimit-Reset"] for a in answers} == {str(int(start + 60))}

        refused = requests.post(url, json={}, headers=auth, timeout=10)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(int(start + 60 - now[0]))
        assert len(fake.depositions) == 3  # the refused create made nothing

        bucket = answers[0].json()["links"]["bucket"]
        body = b"x" * (8 * 1024 * 1024)
        put = requests.put(f"{bucket}/big.bin", data=body, headers=auth, timeout=10)
        assert put.status_code == 429 and "close" in put.headers["Connection"]
        assert all(not d.files for d in fake.depositions.values())
        assert fake.refused_429 == 2

        now[0] = start + 60.5  # the next window
        again = requests.get(url, headers=auth, timeout=10)
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"
        fake.add_token("tok-other")  # another token has its own window
        assert (
            requests.get(url, headers={"Authorization": "Bearer tok-other"}, timeout=10).headers[
                "X-RateLimit-Remaining"
            ]
            == "2"
        )
    finally:
        server.stop()
        fake.close()
