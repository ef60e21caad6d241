#!/usr/bin/env bash
# One-shot join of a 1M-row table with a 10k-row table: Strand (HTTP SQL) beside SQLite (sqlite3
# CLI, in memory) and PostgreSQL (a throwaway cluster), same data, same queries, in one run
# (issue 21, BENCHMARKS.md "One-shot join, 1M x 10k rows"). Modelled on group_by_1m.sh. Two
# queries, each answered RUNS times after a warm-up by each engine; the script prints every time,
# checks that all three return the same rows, and ends with min/median/max per engine and query.
#
#   bash bench/scripts/join_1m_10k.sh            # needs target/release/strand, sqlite3,
#   ROWS=1000000 RUNS=5 bash bench/scripts/join_1m_10k.sh   # initdb/pg_ctl/psql, curl, python3
#
# Strand runs a join as a hash join: the tables after the first are read into hash tables and
# the first table's rows probe them, so the 1M-row table comes first in FROM. BREAKDOWN=1 (the
# default) also times, in Strand only, a scan of t alone and the grouped join with a WHERE that
# matches no row (every row still scanned and probed, nothing grouped), to see where time goes.
set -euo pipefail
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-5}
ROOMS=${ROOMS:-10000}
BREAKDOWN=${BREAKDOWN:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STRAND=${STRAND:-$ROOT/target/release/strand}
WORK=$(mktemp -d)
stop_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- pg_ctl -D "$WORK/pg" stop -m immediate; else pg_ctl -D "$WORK/pg" stop -m immediate; fi; }
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; stop_pg >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
# Q1 visits every t row and looks its room up, but returns 10 rows; Q2 returns rows (100).
Q1="SELECT r.region, COUNT(*) AS n, SUM(t.v) AS s FROM t JOIN rooms r ON t.room = r.id GROUP BY r.region ORDER BY r.region"
Q2="SELECT t.id, r.name FROM t JOIN rooms r ON t.room = r.id WHERE t.v = 7 ORDER BY t.id LIMIT 100"
# Strand-only breakdown (BREAKDOWN=1): scan alone, and scan + probe with nothing grouped.
B1="SELECT COUNT(*) AS n FROM t WHERE v < 0"
B2="SELECT r.region, COUNT(*) AS n, SUM(t.v) AS s FROM t JOIN rooms r ON t.room = r.id WHERE t.v < 0 GROUP BY r.region ORDER BY r.region"
# Rows: t: id 1..ROWS, room = id % ROOMS, v = (id * 7919) % 1000;
#       rooms: id 0..ROOMS-1, name = 'room-' || id, region = id % 10 (every t row finds its room).
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
TIMES="$WORK/times"; : > "$TIMES"

echo "t: $ROWS rows, rooms: $ROOMS rows, runs: $RUNS"
echo "q1: $Q1"
echo "q2: $Q2"

# --- Strand ---
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
STRAND_ADMIN_PASSWORD=bench-pw "$STRAND" serve --data-dir "$WORK/strand" \
  --http-addr "127.0.0.1:$HTTP_PORT" --quic-addr 127.0.0.1:0 --fsync never >"$WORK/strand.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$HTTP_PORT/v1/api/sql"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/health" && break; sleep 0.1; done
sql() { curl -s -u admin:bench-pw -H 'Content-Type: application/json' --data-binary @- "$URL"; }
# Fails the run on any answer that is not a success (prints it first).
check_ok() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("status")=="success" else (print("strand error: "+json.dumps(d)[:2000], file=sys.stderr) or 1))' "$1"; }
echo '{"sql":"CREATE NAMESPACE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, room INT, v INT) WITH (TYPE = '"'"'SHARED'"'"'); CREATE TABLE app.rooms (id INT PRIMARY KEY, name TEXT, region INT) WITH (TYPE = '"'"'SHARED'"'"')"}' | sql > "$WORK/ddl.json"
check_ok "$WORK/ddl.json"
start=$(now_ms)
python3 - "$ROWS" "$ROOMS" <<'PY' > "$WORK/inserts.jsonl"
import json, sys
rows, rooms = int(sys.argv[1]), int(sys.argv[2]); batch = 10_000
for first in range(0, rooms, batch):
    last = min(first + batch, rooms)
    values = ", ".join(f"({i}, 'room-{i}', {i % 10})" for i in range(first, last))
    print(json.dumps({"sql": f"INSERT INTO app.rooms (id, name, region) VALUES {values}"}))
for first in range(1, rows + 1, batch):
    last = min(first + batch - 1, rows)
    values = ", ".join(f"({i}, {i % rooms}, {(i * 7919) % 1000})" for i in range(first, last + 1))
    print(json.dumps({"sql": f"INSERT INTO app.t (id, room, v) VALUES {values}"}))
PY
while IFS= read -r line; do printf '%s' "$line" | sql > "$WORK/insert.json"; check_ok "$WORK/insert.json"; done < "$WORK/inserts.jsonl"
echo "strand: loaded in $(( $(now_ms) - start )) ms"
# strand_time NAME QUERY: warm-up, then RUNS timed runs; keeps the last answer in $WORK/strand_NAME.json.
strand_time() {
  local name=$1 body
  body=$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1].replace(" t ", " app.t ").replace(" rooms ", " app.rooms ")}))' "$2")
  printf '%s' "$body" | sql > "$WORK/strand_$name.json"; check_ok "$WORK/strand_$name.json"
  for run in $(seq "$RUNS"); do
    start=$(now_ms); printf '%s' "$body" | sql > "$WORK/strand_$name.json"; ms=$(( $(now_ms) - start ))
    check_ok "$WORK/strand_$name.json"
    took=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["took_ms"])' "$WORK/strand_$name.json")
    echo "strand $name run $run: $ms ms (server took_ms $took)"
    echo "strand $name $ms" >> "$TIMES"; echo "strand-server $name $took" >> "$TIMES"
  done
}
strand_time q1 "$Q1"
strand_time q2 "$Q2"
if [ "$BREAKDOWN" = 1 ]; then
  strand_time scan-only "$B1"
  strand_time join-no-groups "$B2"
fi

# --- SQLite (in memory, sqlite3 CLI) ---
{
  echo "CREATE TABLE t (id INTEGER PRIMARY KEY, room INTEGER, v INTEGER);"
  echo "CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT, region INTEGER);"
  echo "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $ROWS) INSERT INTO t SELECT i, i % $ROOMS, (i * 7919) % 1000 FROM s;"
  echo "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $ROOMS - 1) INSERT INTO rooms SELECT i, 'room-' || i, i % 10 FROM s;"
  echo "ANALYZE;"
  echo ".timer on"
  for _ in $(seq $((RUNS + 1))); do echo "$Q1;"; done
  echo ".timer off"; echo "SELECT '--q2--';"; echo ".timer on"
  for _ in $(seq $((RUNS + 1))); do echo "$Q2;"; done
} | sqlite3 :memory: > "$WORK/sqlite.out"

# --- PostgreSQL (throwaway cluster) ---
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: then the cluster runs as `nobody`.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
mkdir -p "$WORK/pg" && chmod 755 "$WORK" && { [ "$(id -u)" != 0 ] || chown nobody "$WORK/pg"; }
as_pg initdb -D "$WORK/pg" -U postgres --auth=trust >/dev/null
as_pg pg_ctl -D "$WORK/pg" -l "$WORK/pg/log" -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
psqlq() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
psqlq -c "CREATE TABLE t (id BIGINT PRIMARY KEY, room INT, v INT)"
psqlq -c "CREATE TABLE rooms (id INT PRIMARY KEY, name TEXT, region INT)"
psqlq -c "INSERT INTO t SELECT i, i % $ROOMS, (i::bigint * 7919) % 1000 FROM generate_series(1, $ROWS) AS i"
psqlq -c "INSERT INTO rooms SELECT i, 'room-' || i, i % 10 FROM generate_series(0, $ROOMS - 1) AS i"
psqlq -c "VACUUM ANALYZE"
echo "postgres plan, q1:"; psqlq -c "EXPLAIN (COSTS OFF) $Q1" | sed 's/^/  /'
echo "postgres plan, q2:"; psqlq -c "EXPLAIN (COSTS OFF) $Q2" | sed 's/^/  /'
{
  echo '\timing on'
  for _ in $(seq $((RUNS + 1))); do echo "$Q1;"; done
  echo '\timing off'; echo '\echo --q2--'; echo '\timing on'
  for _ in $(seq $((RUNS + 1))); do echo "$Q2;"; done
} | psqlq > "$WORK/pg.out"

# --- Same answers everywhere, then the summary ---
python3 - "$WORK" "$RUNS" "$BREAKDOWN" <<'PY'
import json, statistics, sys
work, runs, breakdown = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
times = {}
def strand_rows(name, cols):
    return [tuple(r[c] for c in cols) for r in json.load(open(f"{work}/strand_{name}.json"))["results"][0]["rows"]]
strand = {"q1": strand_rows("q1", ("region", "n", "s")), "q2": strand_rows("q2", ("id", "name"))}
def parse(path, time_prefix, time_ms):
    """Splits a CLI transcript at the --q2-- line into per-query (rows, times)."""
    out = {"q1": ([], []), "q2": ([], [])}
    query = "q1"
    for line in open(path):
        line = line.rstrip("\n")
        if line == "--q2--":
            query = "q2"
        elif line.startswith(time_prefix):
            out[query][1].append(time_ms(line))
        elif line:
            parts = line.split("|")
            out[query][0].append(tuple(int(p) for p in parts) if query == "q1" else (int(parts[0]), parts[1]))
    return out
sqlite = parse(f"{work}/sqlite.out", "Run Time:", lambda l: float(l.split()[3]) * 1000)
pg = parse(f"{work}/pg.out", "Time:", lambda l: float(l.split()[1]))
ok = True
for q in ("q1", "q2"):
    want = strand[q]
    for engine, got in (("sqlite", sqlite[q]), ("postgres", pg[q])):
        rows, ts = got
        # every one of the RUNS+1 answers must equal Strand's
        copies = [rows[i * len(want):(i + 1) * len(want)] for i in range(runs + 1)]
        if len(want) == 0 or len(rows) != len(want) * (runs + 1) or any(c != want for c in copies):
            ok = False
            print(f"MISMATCH {q} {engine}: strand {want[:3]}... ({len(want)} rows), {engine} {rows[:3]}... ({len(rows)} rows)")
        if len(ts) != runs + 1:
            ok = False
            print(f"{engine} {q}: expected {runs + 1} timings, got {len(ts)}")
        for i, t in enumerate(ts[1:], 1):
            print(f"{engine} {q} run {i}: {t:.1f} ms")
        times[(engine, q)] = ts[1:]
    print(f"{q}: same {len(want)} rows from all three engines" if ok else f"{q}: answers differ")
for line in open(f"{work}/times"):
    engine, q, ms = line.split()
    times.setdefault((engine, q), []).append(float(ms))
def fmt(ts): return f"min {min(ts):8.1f}  median {statistics.median(ts):8.1f}  max {max(ts):8.1f} ms"
print("\nsummary (ms, over the runs after the warm-up; strand = wall time of curl, strand-server = took_ms)")
queries = ["q1", "q2"] + (["scan-only", "join-no-groups"] if breakdown else [])
for q in queries:
    for engine in ("strand", "strand-server", "sqlite", "postgres"):
        if (engine, q) in times:
            print(f"  {q:15} {engine:14} {fmt(times[(engine, q)])}")
for q in ("q1", "q2"):
    s = statistics.median(times[("strand", q)])
    print(f"  {q}: strand median / sqlite median = {s / statistics.median(times[('sqlite', q)]):.2f}x, "
          f"/ postgres median = {s / statistics.median(times[('postgres', q)]):.2f}x")
sys.exit(0 if ok else 1)
PY
