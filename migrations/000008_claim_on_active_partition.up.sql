-- Runners claim from skipper.jobs_active itself, the partition every unfinished job lives in: planned through the
-- partitioned table, the claim (planned on every call, its plan depends on its limit) spent as long again in the
-- planner. Privileges on a partition are its own, so the runner needs UPDATE there too (it has it on skipper.jobs,
-- which covers every partition already: nothing new becomes writable).
GRANT UPDATE ON skipper.jobs_active TO skipper_runner;
