-- 1. Runners claim from skipper.jobs_active itself, the partition every unfinished job lives in: planned through the
-- partitioned table, the claim (planned on every call, its plan depends on its limit) spent as long again in the
-- planner. Privileges on a partition are its own, so the runner needs UPDATE there too (it has it on skipper.jobs,
-- which covers every partition already: nothing new becomes writable).
GRANT UPDATE ON skipper.jobs_active TO skipper_runner;

-- 2. Runners pruned finished jobs of the active partition with a DELETE granted on it, which let the runner role
-- delete any job there, QUEUED and RUNNING ones included. Pruning is now this function, with the owner's rights: it
-- deletes only jobs finished longer ago than `retention_ms` (at least a minute), at most `max_rows` (1 to 100,000)
-- per call, with their artifacts; the runner loses DELETE on the partition.
CREATE FUNCTION skipper.prune_finished(retention_ms bigint, max_rows integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pruned bigint;
BEGIN
    IF retention_ms IS NULL OR retention_ms < 60000 THEN
        RAISE EXCEPTION 'retention must be at least a minute, not % ms', retention_ms USING ERRCODE = '22023';
    END IF;
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 100000 THEN
        RAISE EXCEPTION 'max_rows must be from 1 to 100000, not %', max_rows USING ERRCODE = '22023';
    END IF;
    WITH doomed AS (
      SELECT id FROM skipper.jobs_active
      WHERE finished_at IS NOT NULL AND finished_at < now() - retention_ms * interval '1 millisecond'
      ORDER BY finished_at LIMIT max_rows),
    gone AS (
      -- The conditions again: a job retried meanwhile (back to QUEUED) is rechecked and kept.
      DELETE FROM skipper.jobs_active j USING doomed
      WHERE j.id = doomed.id AND j.finished_at IS NOT NULL
        AND j.finished_at < now() - retention_ms * interval '1 millisecond'
      RETURNING j.id),
    artifacts AS (
      DELETE FROM skipper.job_artifacts a USING gone WHERE a.job_id = gone.id)
    SELECT count(*) INTO pruned FROM gone;
    RETURN pruned;
END
$$;
REVOKE ALL ON FUNCTION skipper.prune_finished(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION skipper.prune_finished(bigint, integer) TO skipper_runner;
REVOKE DELETE ON skipper.jobs_active FROM skipper_runner;
