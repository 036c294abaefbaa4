#!/usr/bin/env bash
# Fills the shop's tables with server-side SQL: scripts/seed.sh ROWS MERCHANTS DAYS
# transactions is replaced (mostly PAID, some FAILED and REFUNDED, spread over DAYS from 2025-01-01);
# products is filled only when empty.
set -euo pipefail
rows=${1:-1000000}
merchants=${2:-1000}
days=${3:-31}
for pair in "ROWS:$rows" "MERCHANTS:$merchants" "DAYS:$days"; do
    value=${pair#*:}
    if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$value" -lt 1 ]; then
        echo "seed: ${pair%%:*} must be a positive whole number, not '$value'" >&2
        exit 2
    fi
done
if ! command -v psql >/dev/null 2>&1; then
    echo "seed: psql is missing; installing postgresql-client" >&2
    apt-get update -qq && apt-get install -y -qq postgresql-client >&2
fi
start=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -v rows="$rows" -v merchants="$merchants" -v days="$days" \
    -d "$DATABASE_URL" -f "$(dirname "${BASH_SOURCE[0]}")/seed.sql"
end=$(date +%s.%N)
printf 'seed: %s transactions over %s merchants and %s days in %.1f s\n' "$rows" "$merchants" "$days" \
    "$(echo "$end - $start" | bc 2>/dev/null || python3 -c "print($end - $start)")"
