"""Login security: identical failures, brute-force lockout and its window,
the login storm that must not stall the event loop, cpu_burn, and Redis
outages (tokens are refused rather than trusted unchecked)."""
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from oms_test import TEST_PASSWORD as PASSWORD
from oms_test import bearer, client_ip, query, redis_cli, request, running, stack, unique, wait_until


def outcomes_of(email):
    return [r[0] for r in query("SELECT outcome FROM users.login_attempts WHERE email = lower(%s) ORDER BY id",
                                email)]


def failures_counted(email):
    """Failures the limiter holds for this account right now."""
    return int(redis_cli("ZCARD", f"oms:login:failures:email:{email.lower()}"))


def login(service, email, password, ip):
    return service.post("/api/users/login", {"email": email, "password": password}, {"X-Forwarded-For": ip})


def test_wrong_email_and_wrong_password_look_the_same(user_service, account):
    acct = account()
    ip = client_ip()
    jobs = lambda: user_service.metric("work_pool_jobs_total", outcome="done")  # noqa: E731
    wrong_password, unknown_email = [], []
    for _ in range(7):  # interleaved, so that machine noise falls on both alike
        before = jobs()
        started = time.monotonic()
        a = login(user_service, acct.email, "not the password", ip)
        wrong_password.append(time.monotonic() - started)
        assert jobs() == before + 1  # one argon2id check
        before = jobs()
        started = time.monotonic()
        b = login(user_service, f"{unique('nobody-')}@example.com", "not the password", ip)
        unknown_email.append(time.monotonic() - started)
        assert jobs() == before + 1  # the same check, against the dummy hash
        assert (a.status, a.body) == (b.status, b.body) == (401, a.body)
        assert a.error_code() == "invalid_credentials"
        redis_cli("DEL", f"oms:login:failures:ip:{ip}", f"oms:login:failures:email:{acct.email}")
    # both pay for a hash: neither is a fast path an attacker could time (a
    # path without the hash would answer in a few percent of the time)
    assert statistics.median(unknown_email) > 0.25 * statistics.median(wrong_password)
    assert statistics.median(wrong_password) > 0.25 * statistics.median(unknown_email)


def test_failures_are_logged_counted_and_recorded(user_service, account):
    acct = account()
    ip = client_ip()
    before = {o: user_service.metric("oms_logins_total", outcome=o)
              for o in ("success", "bad_credentials", "invalid")}
    assert login(user_service, acct.email, "wrong password!", ip).status == 401
    invalid = user_service.post("/api/users/login", {"email": acct.email})
    assert invalid.status == 400 and invalid.error_code() == "invalid_request", invalid
    assert invalid.json["error"]["field"] == "password"
    assert login(user_service, acct.email, acct.password, ip).status == 200
    assert user_service.metric("oms_logins_total", outcome="bad_credentials") == before["bad_credentials"] + 1
    assert user_service.metric("oms_logins_total", outcome="invalid") == before["invalid"] + 1
    assert user_service.metric("oms_logins_total", outcome="success") == before["success"] + 1
    failed = [l for l in user_service.log_lines() if l["msg"] == "login failed" and l.get("email") == acct.email]
    assert failed and failed[-1]["level"] == "warn" and failed[-1]["client"] == ip
    assert failed[-1]["reason"] == "wrong password"
    rows = query("SELECT outcome, host(client_ip) FROM users.login_attempts WHERE email = %s ORDER BY id",
                 acct.email)
    assert rows == [("bad_credentials", ip), ("success", ip)]  # the invalid request changed nothing


def test_five_failures_lock_the_account(user_service, account):
    acct = account()
    ip = client_ip()
    locked_before = user_service.metric("oms_logins_total", outcome="locked")
    for _ in range(5):
        assert login(user_service, acct.email, "guess-guess-guess", ip).status == 401
    # now even the right password, from anywhere, is refused for a while
    for attempt_ip in (ip, client_ip()):
        res = login(user_service, acct.email, acct.password, attempt_ip)
        assert res.status == 429 and res.error_code() == "too_many_attempts", res
        retry_after = int(res.headers["retry-after"])
        assert 290 <= retry_after <= 300 and res.json["error"]["retry_after_seconds"] == retry_after
    assert user_service.metric("oms_logins_total", outcome="locked") == locked_before + 2
    outcomes = [r[0] for r in query("SELECT outcome FROM users.login_attempts WHERE email = %s ORDER BY id",
                                    acct.email)]
    assert outcomes == ["bad_credentials"] * 5 + ["locked"] * 2
    lines = [l for l in user_service.log_lines() if l["msg"] == "login locked out" and l["email"] == acct.email]
    assert len(lines) == 2 and lines[0]["level"] == "warn" and lines[0]["client"] == ip
    # other accounts are not affected
    other = account()
    assert other.login().status == 200


def test_a_success_clears_the_account_failures(user_service, account):
    acct = account()
    ip = client_ip()
    for _ in range(4):
        assert login(user_service, acct.email, "guess-guess-guess", ip).status == 401
    assert failures_counted(acct.email) == 4
    assert acct.login(ip=ip).status == 200
    assert failures_counted(acct.email) == 0
    for _ in range(4):
        assert login(user_service, acct.email, "guess-guess-guess", ip).status == 401
    assert acct.login(ip=ip).status == 200
    assert outcomes_of(acct.email) == ["bad_credentials"] * 4 + ["success"] + ["bad_credentials"] * 4 + ["success"]


def test_twenty_failures_lock_the_address(user_service, account):
    ip = client_ip()
    for _ in range(20):  # spraying: one guess per account, never five on one
        assert login(user_service, f"{unique('spray-')}@example.com", "Summer2026!", ip).status == 401
    acct = account()
    res = login(user_service, acct.email, acct.password, ip)
    assert res.status == 429 and res.error_code() == "too_many_attempts", res
    assert 0 < int(res.headers["retry-after"]) <= 300
    assert outcomes_of(acct.email) == ["locked"]
    assert acct.login(ip=client_ip()).status == 200  # the account itself is fine elsewhere
    assert outcomes_of(acct.email) == ["locked", "success"]
    assert query("SELECT count(*) FROM users.login_attempts WHERE client_ip = %s AND outcome = 'bad_credentials'",
                 ip)[0][0] == 20


def test_concurrent_guesses_cannot_outrun_the_limit(user_service, account):
    acct = account()
    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda _: login(user_service, acct.email, "guess-guess-guess", client_ip()),
                                range(30)))
    statuses = sorted(r.status for r in results)
    assert statuses.count(401) == 5 and statuses.count(429) == 25, statuses
    assert all(r.error_code() == ("invalid_credentials" if r.status == 401 else "too_many_attempts")
               for r in results)
    assert sorted(outcomes_of(acct.email)) == ["bad_credentials"] * 5 + ["locked"] * 25
    assert failures_counted(acct.email) == 5


def test_lockout_lifts_after_the_window():
    with running("user", LOGIN_WINDOW_SECONDS=2, LOGIN_MAX_FAILURES_PER_EMAIL=3) as service:
        email = f"{unique('window-')}@example.com"
        ip = client_ip()
        assert service.post("/api/users/register", {"email": email, "password": PASSWORD, "name": "W"}).status == 201
        for _ in range(3):
            assert login(service, email, "guess-guess-guess", ip).status == 401
        res = login(service, email, PASSWORD, ip)
        locked_at = time.monotonic()
        assert res.status == 429 and 1 <= int(res.headers["retry-after"]) <= 2
        # refused attempts do not extend the lock, so asking again is safe
        ok = wait_until(lambda: (lambda r: r if r.status == 200 else None)(login(service, email, PASSWORD, ip)),
                        10, interval=0.2, what="the lockout to lift")
        assert ok.json["user"]["email"] == email
        assert time.monotonic() - locked_at >= 0.5  # it did hold for a while
        outcomes = outcomes_of(email)
        assert outcomes[:3] == ["bad_credentials"] * 3 and outcomes[-1] == "success"
        assert set(outcomes[3:-1]) == {"locked"}


def test_a_login_storm_does_not_stall_the_event_loop(user_service):
    """50 logins at once (each ~35 ms of argon2id, on the work pool) while
    /health/live is polled: the loops keep answering while the hashes run.
    Were a hash computed on a loop, that loop would answer nothing until its
    share of the 50 was done (about a second here)."""
    stop = threading.Event()
    polls = []  # (started, finished, status or the error)

    def poll_live():
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = request(user_service.port, "GET", "/health/live").status
            except OSError as error:
                status = repr(error)
            polls.append((started, time.monotonic(), status))
            stop.wait(0.01)

    def timed_login(n):
        started = time.monotonic()
        res = login(user_service, f"customer{n:03d}@oms.example.com", f"LabCustomer-{n:03d}", client_ip())
        return started, time.monotonic(), res

    jobs = user_service.metric("work_pool_jobs_total", outcome="done")
    poller = threading.Thread(target=poll_live)
    poller.start()
    try:
        with ThreadPoolExecutor(50) as pool:
            logins = list(pool.map(timed_login, range(101, 151)))
    finally:
        stop.set()
        poller.join()
    assert [res.status for _, _, res in logins] == [200] * 50, [r for _, _, r in logins if r.status != 200][:3]
    assert user_service.metric("work_pool_jobs_total", outcome="done") == jobs + 50  # 50 hashes ran
    assert all(status == 200 for _, _, status in polls), [p for p in polls if p[2] != 200][:3]

    def logins_in_flight(moment):
        return sum(1 for started, finished, _ in logins if started <= moment < finished)

    # live answers that came back while at least ten logins still waited for theirs
    interleaved = [p for p in polls if logins_in_flight(p[1]) >= 10]
    assert len(interleaved) >= 5, (len(polls), len(interleaved))
    slowest = max(finished - started for started, finished, _ in polls)
    assert slowest < 0.5, sorted(finished - started for started, finished, _ in polls)[-5:]


def test_cpu_burn_fault_adds_hashing_work(user_service, account):
    acct = account()
    job_seconds = lambda: user_service.metric("work_pool_job_duration_seconds_sum")  # noqa: E731

    def cost_of_one_login():
        before = job_seconds()
        assert acct.login().status == 200
        return job_seconds() - before

    normal = statistics.median(cost_of_one_login() for _ in range(3))
    try:
        user_service.apply_faults({"user.cpu_burn": 9})
        burned = statistics.median(cost_of_one_login() for _ in range(3))
    finally:
        user_service.apply_faults({"user.cpu_burn": None})
    assert burned > 3 * normal, (normal, burned)  # 1 + 9 hashes instead of 1: 10x, with room for noise
    assert cost_of_one_login() < burned / 2  # and back to normal once cleared


def test_cpu_burn_is_capped_at_50_extra_hashes(user_service, account):
    acct = account()
    job_seconds = lambda: user_service.metric("work_pool_job_duration_seconds_sum")  # noqa: E731

    def cost_of_one_login():
        before = job_seconds()
        assert acct.login().status == 200
        return job_seconds() - before

    normal = statistics.median(cost_of_one_login() for _ in range(3))
    try:
        user_service.apply_faults({"user.cpu_burn": 100000})
        burned = cost_of_one_login()
    finally:
        user_service.apply_faults({"user.cpu_burn": None})
    # 51 hashes; uncapped it would be 100001 (about an hour)
    assert 15 * normal < burned < 200 * normal, (normal, burned)


def test_attempts_that_could_not_be_checked_do_not_count(user_service, account):
    acct = account()
    ip = client_ip()
    stack("stop-postgres")
    try:
        ready = wait_until(lambda: (lambda r: r if r.status == 503 else None)(user_service.get("/health/ready")),
                           10, what="postgres seen down")
        assert "postgres" in ready.json["error"]["message"] and ready.json["checks"]["postgres"]["status"] == "down"
        for _ in range(6):  # more than the account's limit
            res = login(user_service, acct.email, "a wrong password", ip)
            assert res.status == 503 and res.error_code() == "dependency_unavailable", res
        assert failures_counted(acct.email) == 0
    finally:
        stack("start-postgres")
    user_service.wait_ready_everywhere()
    assert outcomes_of(acct.email) == []  # nothing was checked, nothing recorded
    assert acct.login(ip=ip).status == 200  # none of the six counted as a failure
    assert outcomes_of(acct.email) == ["success"]


def test_a_full_hashing_pool_answers_503_without_counting_the_attempt():
    """One hashing thread and room for one job in its queue: a burst of
    logins overflows it. Those refused get 503 "busy" with Retry-After and
    count nowhere: no row, no failure in the limiter, no bad_credentials."""
    with running("user", HASH_THREADS=1, HASH_QUEUE_MAX=1, LOGIN_MAX_FAILURES_PER_EMAIL=100,
                 LOGIN_MAX_FAILURES_PER_IP=100) as service:
        email = f"{unique('busy-')}@example.com".lower()
        assert service.post("/api/users/register", {"email": email, "password": PASSWORD, "name": "B"}).status == 201
        try:
            service.apply_faults({"user.cpu_burn": 10})  # each check ~0.4 s: the pool stays full
            bad = service.metric("oms_logins_total", outcome="bad_credentials")
            rejected = service.metric("work_pool_jobs_total", outcome="rejected")
            with ThreadPoolExecutor(12) as pool:
                results = list(pool.map(lambda _: login(service, email, "a wrong password", client_ip()), range(12)))
        finally:
            service.apply_faults({"user.cpu_burn": None})
        busy = [r for r in results if r.status == 503]
        checked = [r for r in results if r.status == 401]
        assert len(busy) + len(checked) == 12, results
        assert busy and checked, [r.status for r in results]
        for res in busy:
            assert res.error_code() == "busy" and res.headers["retry-after"] == "1", res
        assert all(r.error_code() == "invalid_credentials" for r in checked)
        assert outcomes_of(email) == ["bad_credentials"] * len(checked)
        assert service.metric("oms_logins_total", outcome="bad_credentials") == bad + len(checked)
        assert service.metric("work_pool_jobs_total", outcome="rejected") == rejected + len(busy)
        assert failures_counted(email) == len(checked)


def test_old_login_attempts_are_deleted_after_the_retention_period():
    email = f"{unique('retention-')}@example.com".lower()
    for age in ("3 days", "2 days 1 hour", "1 day", "0 seconds"):
        query("INSERT INTO users.login_attempts (email, client_ip, outcome, attempted_at)"
              " VALUES (%s, '198.51.100.9', 'bad_credentials', now() - %s::interval)", email, age)
    with running("user", LOGIN_ATTEMPTS_RETENTION_DAYS=2) as service:
        # the first pass runs 10 s after start, then hourly
        wait_until(lambda: query("SELECT count(*) FROM users.login_attempts WHERE email = %s", email)[0][0] == 2,
                   40, interval=0.5, what="the retention pass")
        ages = query("SELECT extract(epoch FROM now() - attempted_at) / 3600 FROM users.login_attempts"
                     " WHERE email = %s ORDER BY attempted_at", email)
        assert 23 < ages[0][0] < 25 and ages[1][0] < 1, ages  # younger than two days: kept
        deleted = wait_until(lambda: [l for l in service.log_lines() if l["msg"] == "old login attempts deleted"],
                             5, what="the retention log line")
        assert deleted[0]["retention_days"] == 2 and int(deleted[0]["rows"]) >= 2


@pytest.fixture
def redis_down():
    stack("stop-redis")
    try:
        yield
    finally:
        stack("start-redis")


def test_without_redis_logins_and_tokens_fail_closed(user_service, account, redis_down):
    acct_email = "customer010@oms.example.com"
    # a token made before the outage cannot be checked against the deny-list: 503, not trusted
    token = None
    try:
        stack("start-redis")
        user_service.wait_ready_everywhere()
        res = login(user_service, acct_email, "LabCustomer-010", client_ip())
        assert res.status == 200, res
        token = res.json["token"]
    finally:
        stack("stop-redis")
    wait_until(lambda: user_service.get("/health/ready").status == 503, 10, what="redis seen down")
    res = login(user_service, acct_email, "LabCustomer-010", client_ip())
    assert res.status == 503 and "redis" in res.json["error"]["message"], res
    assert res.error_code() == "dependency_unavailable"
    res = user_service.get("/api/users/me", bearer(token))
    assert res.status == 503 and "redis" in res.json["error"]["message"], res
    assert res.error_code() == "dependency_unavailable"
    stack("start-redis")
    user_service.wait_ready_everywhere()
    me = user_service.get("/api/users/me", bearer(token))
    assert me.status == 200 and me.json["email"] == acct_email


def test_forwarded_for_from_an_untrusted_peer_does_not_choose_the_address():
    """With loopback not a trusted proxy, a client cannot pick the address
    that the per-address limit counts and login_attempts records."""
    try:
        with running("user", TRUSTED_PROXIES="192.0.2.1", LOGIN_MAX_FAILURES_PER_IP=3) as service:
            for _ in range(3):
                email = f"{unique('spoof-')}@example.com".lower()
                res = login(service, email, "a wrong password", client_ip())  # a new claimed address each time
                assert res.status == 401
                assert query("SELECT host(client_ip) FROM users.login_attempts WHERE email = %s", email) == \
                    [("127.0.0.1",)]
            # the three failures all counted against the real peer: it is locked out now
            res = login(service, "customer050@oms.example.com", "LabCustomer-050", client_ip())
            assert res.status == 429 and res.error_code() == "too_many_attempts", res
    finally:
        redis_cli("DEL", "oms:login:failures:ip:127.0.0.1")  # the other tests' services trust loopback
