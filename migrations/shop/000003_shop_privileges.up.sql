-- What Skipper's processes may do with the shop's tables (the roles come from Skipper's own migrations).
GRANT SELECT ON public.schema_migrations TO skipper_api, skipper_runner;
-- The API: the shop's orders, stock and report.
GRANT SELECT, UPDATE ON products TO skipper_api;
GRANT SELECT, INSERT, UPDATE ON orders TO skipper_api;
GRANT SELECT ON sales_report TO skipper_api;
-- The runners: the shop's jobs (settlement, report refresh).
GRANT SELECT ON transactions, orders, products TO skipper_runner;
GRANT SELECT, INSERT, DELETE ON settlements, settlement_staging TO skipper_runner;
GRANT SELECT, UPDATE ON sales_report TO skipper_runner;
