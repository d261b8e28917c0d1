# The built-in rule pack as DuckDB SQL over the same Parquet files, for
# `authtrail bench rules`: each rule's filter, grouping and window as a
# window-function query (anchor candidates, without authtrail's folding of
# overlapping windows into one finding). Prints each rule's milliseconds,
# the total of the best run and the peak RSS.
import resource, sys, time
try:
    import duckdb
except ImportError:
    sys.exit("DuckDB is not installed: python3 -m pip install duckdb (or pass --no-duckdb)")
log, runs = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{log}/events/**/*.parquet', hive_partitioning=true)")
def anchors(where, group, n, window, agg="count(*)"):
    return f"""SELECT count(*) FROM (SELECT {agg} OVER (PARTITION BY g ORDER BY time RANGE BETWEEN CURRENT ROW AND INTERVAL {window} FOLLOWING) AS n
               FROM (SELECT *, {group} AS g FROM ev WHERE {where}) WHERE g IS NOT NULL) WHERE n >= {n}"""
SRC = "coalesce(src_ip, src_host)"
TGT = "coalesce(tenant, dst_host, source)"
FAIL = "action = 'login' AND outcome = 'failure'"
Q = {
 "brute_force_user": anchors(FAIL + " AND reason IN ('invalid_credentials', 'account_locked')", '"user"', 10, "10 MINUTE"),
 "brute_force_source": anchors(FAIL, SRC, 20, "10 MINUTE"),
 "distributed_brute_force": anchors(FAIL + " AND reason IN ('invalid_credentials', 'account_locked')", '"user"', 10, "1 HOUR", f"count(DISTINCT {SRC})"),
 "password_spraying": anchors(FAIL, SRC, 5, "1 HOUR", 'count(DISTINCT "user")'),
 "password_spraying_slow": anchors(FAIL, SRC, 15, "6 HOUR", 'count(DISTINCT "user")'),
 "distributed_password_spraying": anchors(FAIL + f" AND reason = 'invalid_credentials' AND {SRC} NOT IN (SELECT {SRC} FROM ev WHERE action = 'login' AND outcome = 'success' AND {SRC} IS NOT NULL)", TGT, 40, "1 HOUR", 'count(DISTINCT "user")'),
 "credential_stuffing": anchors(FAIL + " AND reason = 'unknown_user'", TGT, 50, "1 HOUR", 'count(DISTINCT "user")'),
 "mfa_push_fatigue": """SELECT count(*) FROM (SELECT outcome, method, count(*) FILTER (WHERE outcome = 'failure' AND reason = 'mfa_denied')
      OVER (PARTITION BY "user" ORDER BY time RANGE BETWEEN INTERVAL 10 MINUTE PRECEDING AND CURRENT ROW) AS n
      FROM ev WHERE action = 'mfa_verify' AND "user" IS NOT NULL) WHERE outcome = 'success' AND method = 'push' AND n >= 5""",
 "otp_brute_force": anchors("action = 'mfa_verify' AND outcome = 'failure' AND method IN ('totp', 'sms')", '"user"', 5, "10 MINUTE"),
 "success_after_brute_force": """SELECT count(*) FROM (SELECT outcome, count(*) FILTER (WHERE outcome = 'failure' AND reason IN ('invalid_credentials', 'account_locked'))
      OVER (PARTITION BY "user" ORDER BY time RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS n
      FROM ev WHERE action = 'login' AND "user" IS NOT NULL) WHERE outcome = 'success' AND n >= 10""",
 "impossible_travel": """SELECT count(*) FROM (SELECT time, latitude la, longitude lo,
      lag(time) OVER w t0, lag(latitude) OVER w la0, lag(longitude) OVER w lo0
      FROM ev WHERE action = 'login' AND outcome = 'success' AND "user" IS NOT NULL AND latitude IS NOT NULL AND longitude IS NOT NULL
      WINDOW w AS (PARTITION BY "user" ORDER BY time, event_id))
      WHERE t0 IS NOT NULL AND 2 * 6371 * asin(sqrt(pow(sin(radians(la - la0) / 2), 2) + cos(radians(la0)) * cos(radians(la)) * pow(sin(radians(lo - lo0) / 2), 2))) >= 500
      AND 2 * 6371 * asin(sqrt(pow(sin(radians(la - la0) / 2), 2) + cos(radians(la0)) * cos(radians(la)) * pow(sin(radians(lo - lo0) / 2), 2)))
          / greatest(epoch(time) - epoch(t0), 0.001) * 3600 >= 800""",
 "first_time_country": """SELECT count(*) FROM (SELECT time, lag(time) OVER (PARTITION BY "user", country ORDER BY time) prev,
      min(time) OVER (PARTITION BY "user") first_seen
      FROM ev WHERE action = 'login' AND outcome = 'success' AND "user" IS NOT NULL AND country IS NOT NULL)
      WHERE (prev IS NULL OR prev < time - INTERVAL 14 DAY) AND first_seen <= time - INTERVAL 14 DAY""",
 "domain_not_allowed": """SELECT count(*) FROM (SELECT coalesce(user_domain, 'unknown'), date_trunc('hour', time) FROM ev WHERE action = 'login' AND reason = 'domain_not_allowed' GROUP BY ALL)""",
 "saml_replay": """SELECT count(*) FROM ev WHERE action IN ('login', 'session_start') AND reason = 'replay'""",
 "mass_lockout": anchors("action = 'lockout' AND \"user\" IS NOT NULL", TGT, 5, "1 HOUR", 'count(DISTINCT "user")'),
}
best = None
for _ in range(runs):
    times = {}
    for name, q in Q.items():
        started = time.perf_counter()
        con.execute(q).fetchall()
        times[name] = time.perf_counter() - started
    if best is None or sum(times.values()) < sum(best.values()):
        best = times
for name, seconds in best.items():
    print(f"rule {name} {seconds * 1000:.0f}")
print(f"total {sum(best.values()):.3f}")
print(f"peak_rss_kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
