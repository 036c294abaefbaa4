REVOKE ALL ON sales_report, settlements, settlement_staging, transactions, orders, products FROM skipper_api, skipper_runner;
REVOKE ALL ON public.schema_migrations FROM skipper_api, skipper_runner;
