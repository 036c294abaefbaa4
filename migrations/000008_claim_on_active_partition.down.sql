-- Runners of the previous build claim through skipper.jobs.
REVOKE UPDATE ON skipper.jobs_active FROM skipper_runner;
