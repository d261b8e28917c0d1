#!/usr/bin/env bash
# Counts the instructions authtrail spends per ingested event, under
# valgrind's callgrind. Counts repeat to a fraction of a percent whatever
# else the machine is doing, where timings on a shared two-core machine
# swing by a fifth: this is how changes of a few percent are compared.
#
#   scripts/count-instructions.sh [BINARY ...]     # default: target/release/authtrail
#   AUTH=jwt scripts/count-instructions.sh ...      # bearer tokens instead of HMAC signatures
#
# For each binary:
#   file: `authtrail ingest file` of a fixed demo (2,000 users, 7 days);
#   http: the `authtrail bench http` server under callgrind, for a smaller
#         demo (1,500 users, 7 days): NDJSON batches of 1,000 events, then
#         3,000 single-event POSTs. How requests fall into group commits
#         depends on timing, so these move by a percent or so between runs.
# valgrind runs SHA-256 without the CPU's SHA extensions, so the webhook
# HMAC (http) and the hash chain (file) count far more than they cost on
# the CPU; the http figures are also given without SHA-256. "Handling" is
# what serving each single POST took, from reading its request to writing
# its answer (axum's `handle_connection`), without the commit thread and
# the seal: it does not move with commit grouping, as the server's total
# does (with HMAC it includes the signature's SHA-256; with AUTH=jwt, no
# SHA-256 at all).
set -euo pipefail

command -v valgrind >/dev/null || {
    echo "valgrind is needed: apt-get install valgrind" >&2
    exit 1
}
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/authtrail)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"${bins[0]}" demo --users 2000 --days 7 --seed 42 --start 2026-11-02 \
    --ndjson "$work/demo.ndjson" --data "$work/demo-data" >/dev/null 2>&1
events=$(wc -l <"$work/demo.ndjson")

# The bench starts its server through this wrapper, under callgrind.
cat >"$work/server.sh" <<EOF
#!/usr/bin/env bash
exec valgrind --tool=callgrind --callgrind-out-file="$work/server.%p.out" "\$SERVER_BIN" "\$@" 2>/dev/null
EOF
chmod +x "$work/server.sh"

total_of() { awk '/^summary:/ { print $2 }' "$1"; }
# Inclusive instructions of the first function matching awk regex $2.
inclusive_of() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v pattern="$2" '!found && $0 ~ pattern { gsub(",", "", $1); print $1; found = 1 }'
}
sha_of() { inclusive_of "$1" 'sha2::sha256::compress256 '; }
handling_of() { inclusive_of "$1" 'axum::serve::handle_connection::[{][{]closure[}][}]::[{][{]closure[}][}] [[]'; }

# Passed only when asked for: builds older than --auth sign with HMAC.
auth=()
[ -z "${AUTH:-}" ] || auth=(--auth "$AUTH")
echo "| binary | file: instructions / event | http batches: / event | without SHA-256 | http singles: / request | without SHA-256 | handling / request |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for bin in "${bins[@]}"; do
    rm -rf "$work/data" "$work"/server.*.out "$work/bench"
    valgrind --tool=callgrind --callgrind-out-file="$work/file.out" \
        "$bin" ingest file --source ocsf --data "$work/data" "$work/demo.ndjson" >/dev/null 2>&1
    file=$(($(total_of "$work/file.out") / events))

    # Only authtrail is counted: builds that run the nginx baseline skip it.
    no_baseline=()
    if "$bin" bench http --help 2>/dev/null | grep -q -- --no-nginx; then
        no_baseline=(--no-nginx)
    fi
    report=$(SERVER_BIN="$bin" "$bin" bench http --users 1500 --days 7 --single-requests 3000 \
        "${auth[@]}" --server "$work/server.sh" --dir "$work/bench" "${no_baseline[@]}" 2>/dev/null)
    batch_events=$(echo "$report" | awk -F'|' '/NDJSON/ { gsub(/[^0-9]/, "", $3); print $3 }')
    # The servers' profiles, in order (with AUTH=jwt the bench also runs
    # `authtrail token` through the wrapper).
    outs=()
    for out in $(ls -tr "$work"/server.*.out); do
        if grep -q '^cmd:.* serve ' "$out"; then outs+=("$out"); fi
    done
    batch_total=$(total_of "${outs[0]}")
    batch_sha=$(sha_of "${outs[0]}")
    single_total=$(total_of "${outs[1]}")
    single_sha=$(sha_of "${outs[1]}")
    handling=$(handling_of "${outs[1]}")
    echo "| $bin | $file | $((batch_total / batch_events)) | $(((batch_total - ${batch_sha:-0}) / batch_events)) | $((single_total / 3000)) | $(((single_total - ${single_sha:-0}) / 3000)) | $((${handling:-0} / 3000)) |"
done
