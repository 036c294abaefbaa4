# Sourced by minimal_cycle.sh and scripts/hosts-bench.sh: prints the minimal SKIP LOCKED cycle as a pgbench script.
# minimal_cycle_sql TABLE BATCH — claim BATCH queued rows (one autocommit statement), then mark them done (another).
minimal_cycle_sql() {
    cat <<SQL
WITH claimed AS (
    UPDATE $1 SET status = 'running'
    WHERE id IN (SELECT id FROM $1 WHERE status = 'queued' ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING id
)
SELECT count(*) AS claimed, coalesce(array_agg(id), '{}') AS ids FROM claimed
\gset
UPDATE $1 SET status = 'done' WHERE id = ANY (CAST(:ids AS bigint[]));
SQL
}
