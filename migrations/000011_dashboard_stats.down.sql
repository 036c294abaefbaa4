-- Without the dashboard's roll-up.
DROP FUNCTION skipper.roll_up_stats(integer);
DROP TABLE skipper.stats_rollup;
DROP TABLE skipper.stats_minutely;
