#!/usr/bin/env bash
# One-shot GROUP BY over 1M rows: Strand (HTTP SQL) beside SQLite (sqlite3 CLI, in memory) and
# PostgreSQL (a throwaway cluster), same data, same query, in one run (issue 21, BENCHMARKS.md
# "One-shot GROUP BY over 1M rows"). Each engine answers the query RUNS times after a warm-up;
# the script prints every time and checks that all three return the same groups.
#
#   bash bench/scripts/group_by_1m.sh            # needs target/release/strand, sqlite3,
#   ROWS=1000000 RUNS=5 bash bench/scripts/group_by_1m.sh   # initdb/pg_ctl/psql, curl, python3
set -euo pipefail
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STRAND=${STRAND:-$ROOT/target/release/strand}
WORK=$(mktemp -d)
stop_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- pg_ctl -D "$WORK/pg" stop -m immediate; else pg_ctl -D "$WORK/pg" stop -m immediate; fi; }
trap 'kill "${SERVER_PID:-}" 2>/dev/null || true; stop_pg >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
QUERY="SELECT room, COUNT(*) AS n, SUM(v) AS s, MIN(v) AS lo, MAX(v) AS hi FROM t GROUP BY room ORDER BY room"
# Rows: id 1..ROWS, room = id % 100, v = (id * 7919) % 1000.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "rows: $ROWS, runs: $RUNS, query: $QUERY"

# --- Strand ---
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
STRAND_ADMIN_PASSWORD=bench-pw "$STRAND" serve --data-dir "$WORK/strand" \
  --http-addr "127.0.0.1:$HTTP_PORT" --quic-addr 127.0.0.1:0 --fsync never >"$WORK/strand.log" 2>&1 &
SERVER_PID=$!
URL="http://127.0.0.1:$HTTP_PORT/v1/api/sql"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/health" && break; sleep 0.1; done
sql() { curl -s -u admin:bench-pw -H 'Content-Type: application/json' --data-binary @- "$URL"; }
echo '{"sql":"CREATE NAMESPACE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, room INT, v INT) WITH (TYPE = '"'"'SHARED'"'"')"}' | sql >/dev/null
start=$(now_ms)
python3 - "$ROWS" <<'PY' > "$WORK/inserts.jsonl"
import json, sys
rows = int(sys.argv[1]); batch = 10_000
for first in range(1, rows + 1, batch):
    last = min(first + batch - 1, rows)
    values = ", ".join(f"({i}, {i % 100}, {(i * 7919) % 1000})" for i in range(first, last + 1))
    print(json.dumps({"sql": f"INSERT INTO app.t (id, room, v) VALUES {values}"}))
PY
while IFS= read -r line; do printf '%s' "$line" | sql >/dev/null; done < "$WORK/inserts.jsonl"
echo "strand: loaded in $(( $(now_ms) - start )) ms"
STRAND_QUERY=$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1].replace(" t ", " app.t ")}))' "$QUERY")
printf '%s' "$STRAND_QUERY" | sql > "$WORK/strand.json"
for run in $(seq "$RUNS"); do
  start=$(now_ms); printf '%s' "$STRAND_QUERY" | sql > "$WORK/strand.json"; echo "strand run $run: $(( $(now_ms) - start )) ms"
done

# --- SQLite (in memory, sqlite3 CLI) ---
{
  echo "CREATE TABLE t (id INTEGER PRIMARY KEY, room INTEGER, v INTEGER);"
  echo "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $ROWS) INSERT INTO t SELECT i, i % 100, (i * 7919) % 1000 FROM s;"
  echo ".timer on"
  for _ in $(seq $((RUNS + 1))); do echo "$QUERY;"; done
} | sqlite3 :memory: > "$WORK/sqlite.out"
grep -E '^Run Time' "$WORK/sqlite.out" | tail -n "$RUNS" | awk '{print "sqlite run " NR ": " $4 * 1000 " ms (real)"}'

# --- PostgreSQL (throwaway cluster) ---
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root: then the cluster runs as `nobody`.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
mkdir -p "$WORK/pg" && chmod 755 "$WORK" && { [ "$(id -u)" != 0 ] || chown nobody "$WORK/pg"; }
as_pg initdb -D "$WORK/pg" -U postgres --auth=trust >/dev/null
as_pg pg_ctl -D "$WORK/pg" -l "$WORK/pg/log" -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
psqlq() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
psqlq -c "CREATE TABLE t (id BIGINT PRIMARY KEY, room INT, v INT)"
psqlq -c "INSERT INTO t SELECT i, i % 100, (i::bigint * 7919) % 1000 FROM generate_series(1, $ROWS) AS i"
psqlq -c "VACUUM ANALYZE t"
{ echo '\timing on'; for _ in $(seq $((RUNS + 1))); do echo "$QUERY;"; done; } | psqlq > "$WORK/pg.out"
grep -E '^Time:' "$WORK/pg.out" | tail -n "$RUNS" | awk '{print "postgres run " NR ": " $2 " ms"}'

# --- Same answer everywhere ---
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
strand = [(r["room"], r["n"], r["s"], r["lo"], r["hi"]) for r in json.load(open(f"{work}/strand.json"))["results"][0]["rows"]]
def rows(path, sep):
    out = []
    for line in open(path):
        parts = line.strip().split(sep)
        if len(parts) == 5 and parts[0].lstrip("-").isdigit():
            out.append(tuple(int(p) for p in parts))
    return out
sqlite = rows(f"{work}/sqlite.out", "|")[: len(strand)]
pg = rows(f"{work}/pg.out", "|")[: len(strand)]
assert strand == sqlite == pg, (strand[:3], sqlite[:3], pg[:3])
print(f"same {len(strand)} groups from all three engines")
PY
