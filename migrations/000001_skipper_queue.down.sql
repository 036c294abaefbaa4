DROP VIEW skipper.running_jobs;
DROP VIEW skipper.queue_stats;
DROP TABLE skipper.job_artifacts;
DROP TABLE skipper.kinds;
DROP TABLE skipper.runners;
DROP TABLE skipper.jobs;
-- The schema stays: it holds skipper.schema_migrations, the version table.
