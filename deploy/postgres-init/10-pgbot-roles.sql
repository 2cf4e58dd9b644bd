-- pgbot's least-privilege roles, created once by the postgres image on a new volume (docker-compose.yml mounts
-- this folder at /docker-entrypoint-initdb.d; it runs as the superuser, in POSTGRES_DB). The same setup as the
-- README's "Database roles" section. `pgbot check-config` verifies the result against deploy/pgbot.toml.
--
-- pgbot     the bot's login: no superuser, no role attributes; its password comes from 20-pgbot-password.sh.
--           NOINHERIT: it may SET ROLE to the roles below but does not use their rights itself.
-- pgbot_reader  what "*" maps to: everyone the bot talks to reads, and nothing else.
-- pgbot_writer  what named people map to: they may propose changes, which an approver must approve.
CREATE ROLE pgbot LOGIN NOINHERIT;
CREATE ROLE pgbot_reader NOLOGIN;
CREATE ROLE pgbot_writer NOLOGIN;
GRANT pgbot_reader, pgbot_writer TO pgbot;

-- The audit trail (schema pgbot) and `pgbot demo --load-sample` (tables in public) are created by the login.
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO pgbot', current_database()); END $$;
GRANT CREATE ON SCHEMA public TO pgbot;

-- Tables the login creates are readable by both roles and writable by the writers.
ALTER DEFAULT PRIVILEGES FOR ROLE pgbot IN SCHEMA public GRANT SELECT ON TABLES TO pgbot_reader, pgbot_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE pgbot IN SCHEMA public GRANT INSERT, UPDATE, DELETE ON TABLES TO pgbot_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE pgbot IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO pgbot_writer;
