-- skipper-migrate: no transaction
-- The indexes the next migration (the job table's partitioning) gives the table it keeps as its active partition,
-- built here with CONCURRENTLY: on a job table of millions of rows they take a while, and the queue must keep
-- running meanwhile. Each statement commits on its own; run again, it skips what exists.
-- Unique keys scoped by kind. finished_at is there because a unique index of the partitioned table must include its
-- partition key; it is NULL for every QUEUED job, and NULLS NOT DISTINCT makes NULLs equal.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_kind_unique_key_idx ON skipper.jobs (kind, unique_key, finished_at)
    NULLS NOT DISTINCT WHERE status = 'QUEUED' AND unique_key IS NOT NULL;
-- Retention of the jobs that finished before the cutover to daily partitions, oldest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_finished_at_idx ON skipper.jobs (finished_at) WHERE finished_at IS NOT NULL;
