-- Back to one table: finished jobs of the daily partitions move into the active partition, which becomes
-- skipper.jobs again. Reads every finished job: for going back, not for a busy database.
DROP VIEW skipper.queue_stats;
DROP VIEW skipper.running_jobs;
DROP FUNCTION skipper.recount_finished();
DROP TABLE skipper.job_counts;

ALTER TABLE skipper.jobs_active DROP CONSTRAINT jobs_active_unfinished;
ALTER TABLE skipper.jobs DETACH PARTITION skipper.jobs_active;
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT name FROM skipper.job_partitions ORDER BY starts_at LOOP
        EXECUTE format('INSERT INTO skipper.jobs_active SELECT * FROM skipper.%I', p.name);
    END LOOP;
END
$$;
ALTER SEQUENCE skipper.job_ids OWNED BY NONE;
DROP TABLE skipper.jobs;
DROP FUNCTION skipper.create_job_partitions(integer);
DROP FUNCTION skipper.drop_job_partitions(interval);
DROP FUNCTION skipper.finish_status(smallint, integer, integer, timestamptz);
DROP TABLE skipper.job_partitions;
DROP TABLE skipper.partitioning;
ALTER INDEX skipper.jobs_active_unique_key_idx RENAME TO jobs_kind_unique_key_idx;
ALTER INDEX skipper.jobs_active_finished_idx RENAME TO jobs_finished_at_idx;

ALTER TABLE skipper.jobs_active RENAME TO jobs;
ALTER TABLE skipper.jobs RENAME CONSTRAINT jobs_active_pkey TO jobs_pkey;
ALTER INDEX skipper.jobs_active_claim_idx RENAME TO jobs_claim_idx;
ALTER INDEX skipper.jobs_active_running_idx RENAME TO jobs_running_idx;
DROP INDEX skipper.jobs_active_status_list_idx;
DROP INDEX skipper.jobs_active_kind_list_idx;
DROP INDEX skipper.jobs_active_queue_list_idx;
CREATE INDEX jobs_status_list_idx ON skipper.jobs (status, id);
CREATE INDEX jobs_kind_list_idx ON skipper.jobs (kind, id);
CREATE INDEX jobs_queue_list_idx ON skipper.jobs (queue, id);
CREATE INDEX jobs_finished_idx ON skipper.jobs (finished_at) WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');
ALTER TABLE skipper.jobs ALTER COLUMN id DROP DEFAULT;
DO $$
BEGIN
    EXECUTE format('ALTER TABLE skipper.jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (START WITH %s)',
                   (SELECT coalesce(max(id), 0) + 1 FROM skipper.jobs));
END
$$;
DROP SEQUENCE skipper.job_ids;
-- A QUEUED twin per (kind, key) could exist now that keys were scoped by kind: keep the oldest's key.
UPDATE skipper.jobs j SET unique_key = NULL
WHERE j.status = 'QUEUED' AND j.unique_key IS NOT NULL
  AND EXISTS (SELECT 1 FROM skipper.jobs o WHERE o.status = 'QUEUED' AND o.unique_key = j.unique_key AND o.id < j.id);
CREATE UNIQUE INDEX jobs_unique_key_idx ON skipper.jobs (unique_key) WHERE status = 'QUEUED' AND unique_key IS NOT NULL;
ALTER TABLE skipper.job_artifacts ADD CONSTRAINT job_artifacts_job_id_fkey
    FOREIGN KEY (job_id) REFERENCES skipper.jobs (id) ON DELETE CASCADE NOT VALID;

ALTER TABLE skipper.runners DROP COLUMN lease_ms;
ALTER TABLE skipper.jobs ADD COLUMN attempted_by text[] NOT NULL DEFAULT '{}';
ALTER TABLE skipper.jobs DROP COLUMN lease;
DROP SEQUENCE skipper.job_leases;

CREATE VIEW skipper.queue_stats AS
SELECT queue,
       status,
       count(*)                                                      AS jobs,
       date_trunc('second', now() - min(created_at))                 AS oldest_age,
       count(*) FILTER (WHERE status = 'QUEUED' AND run_at > now())  AS scheduled
FROM skipper.jobs
GROUP BY queue, status;

CREATE VIEW skipper.running_jobs AS
SELECT j.id,
       j.queue,
       j.kind,
       j.attempt,
       j.runner_id,
       j.processed,
       j.total,
       CASE WHEN j.total > 0 THEN round(100.0 * j.processed / j.total, 1) END AS progress,
       date_trunc('second', now() - j.started_at)                      AS running_for,
       date_trunc('second', now() - r.heartbeat_at)                    AS heartbeat_age,
       j.cancel_requested_at IS NOT NULL                               AS cancel_requested
FROM skipper.jobs j
LEFT JOIN skipper.runners r ON r.id = j.runner_id
WHERE j.status = 'RUNNING';
