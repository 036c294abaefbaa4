-- Skipper's roles and login users, for a cluster where the processes log in as themselves (make run, compose).
-- Run as a superuser, any number of times (psql -f). Roles belong to the cluster; the database is the current one.
--   skipper_owner         LOGIN, owns the database: runs skipper-migrate; not a superuser, and no CREATEROLE
--                         (on PostgreSQL 15 that would let it grant itself pg_execute_server_program: shell
--                         commands as the server's OS user); the roles below are made here instead
--   skipper_api           NOLOGIN: what skipper-api may do (granted by the migrations)
--   skipper_runner        NOLOGIN: what skipper-runner may do (granted by the migrations)
--   skipper_api_login     LOGIN, member of skipper_api: skipper-api logs in as it
--   skipper_runner_login  LOGIN, member of skipper_runner: skipper-runner logs in as it
-- Passwords (for clusters that ask for one) are set with psql variables, e.g. -v owner_password=...
SET client_min_messages = warning;
SELECT 'CREATE ROLE skipper_owner LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_owner') \gexec
-- Made by an earlier version of this script with CREATEROLE: take it back.
ALTER ROLE skipper_owner NOCREATEROLE;
SELECT 'CREATE ROLE skipper_api NOLOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_api') \gexec
SELECT 'CREATE ROLE skipper_runner NOLOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_runner') \gexec
SELECT 'CREATE ROLE skipper_api_login LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_api_login') \gexec
SELECT 'CREATE ROLE skipper_runner_login LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'skipper_runner_login') \gexec
GRANT skipper_api TO skipper_api_login;
GRANT skipper_runner TO skipper_runner_login;
-- The database's owner may create schemas in it and tables in its public schema (where the shop's tables live).
-- Only for a database nobody migrated yet: objects made by another user stay theirs.
SELECT format('ALTER DATABASE %I OWNER TO skipper_owner', current_database())
WHERE to_regclass('public.schema_migrations') IS NULL AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'skipper') \gexec
\if :{?owner_password}
ALTER ROLE skipper_owner PASSWORD :'owner_password';
\endif
\if :{?api_password}
ALTER ROLE skipper_api_login PASSWORD :'api_password';
\endif
\if :{?runner_password}
ALTER ROLE skipper_runner_login PASSWORD :'runner_password';
\endif
