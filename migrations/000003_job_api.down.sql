DROP INDEX skipper.jobs_queue_list_idx;
DROP INDEX skipper.jobs_kind_list_idx;
DROP INDEX skipper.jobs_status_list_idx;
