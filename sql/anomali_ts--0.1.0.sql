-- anomali_ts 0.1.0: Anomali ThreatStream IOC enrichment for security events.
--
-- Objects live in the anomali_ts schema.  The integration table holds API
-- keys as pgcrypto ciphertext and is readable by its owner only; every
-- function that creates, changes or drops integrations or steps is revoked
-- from PUBLIC and must be granted explicitly.  See README.md, "Security".

\echo Use "CREATE EXTENSION anomali_ts CASCADE" to load this file. \quit

-------------------------------------------------------------------------------
-- Integrations
-------------------------------------------------------------------------------

CREATE TABLE integration (
	id					serial PRIMARY KEY,
	title				text NOT NULL UNIQUE CHECK (title <> ''),
	api_url				text NOT NULL,
	username			text NOT NULL,
	api_key_ciphertext	bytea NOT NULL,
	key_id				integer NOT NULL,
	ssl_verify			boolean NOT NULL DEFAULT true,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON integration FROM PUBLIC;
REVOKE ALL ON SEQUENCE integration_id_seq FROM PUBLIC;
COMMENT ON TABLE integration IS
	'ThreatStream accounts; api_key_ciphertext is pgp_sym_encrypt output under master key key_id. Owner-only.';

CREATE VIEW integrations AS
	SELECT id, title, api_url, username, ssl_verify, created_at, updated_at
	FROM integration;
REVOKE ALL ON integrations FROM PUBLIC;
COMMENT ON VIEW integrations IS
	'Integrations without their keys or ciphertext; safe to grant to operators.';

CREATE FUNCTION anomali_integration_changed() RETURNS trigger
	AS 'MODULE_PATHNAME' LANGUAGE C;
COMMENT ON FUNCTION anomali_integration_changed() IS
	'Makes every session forget cached integrations when the table changes.';

CREATE TRIGGER integration_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON integration
	FOR EACH STATEMENT EXECUTE FUNCTION anomali_integration_changed();

CREATE FUNCTION anomali_create_integration(
	title text,
	username text,
	api_key text,
	api_url text DEFAULT 'https://api.threatstream.com/api/v2/intelligence/',
	ssl_verify boolean DEFAULT true,
	skip_health_check boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_create_integration(text, text, text, text, boolean, boolean) IS
	'Store a ThreatStream account after a health check; the key is kept only encrypted.';

CREATE FUNCTION anomali_alter_integration(
	title text,
	api_url text DEFAULT NULL,
	username text DEFAULT NULL,
	ssl_verify boolean DEFAULT NULL,
	new_title text DEFAULT NULL,
	skip_health_check boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_alter_integration(text, text, text, boolean, text, boolean) IS
	'Change the URL, username, TLS verification or title of an integration; NULL keeps a setting.';

CREATE FUNCTION anomali_set_integration_key(
	title text,
	api_key text,
	skip_health_check boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_set_integration_key(text, text, boolean) IS
	'Replace the API key of an integration after a health check with the new key.';

CREATE FUNCTION anomali_drop_integration(title text, if_exists boolean DEFAULT false)
	RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_drop_integration(text, boolean) IS
	'Remove an integration and its encrypted key.';

CREATE FUNCTION anomali_rotate_master_key() RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_rotate_master_key() IS
	'Add a new master key and re-encrypt every API key under it; returns the new key id.';

CREATE FUNCTION anomali_purge_master_keys() RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_purge_master_keys() IS
	'Remove master keys that no integration uses any more; returns how many were removed.';

CREATE FUNCTION anomali_health(
	title text DEFAULT NULL,
	OUT title text, OUT api_url text, OUT reachable boolean,
	OUT credentials_accepted boolean, OUT http_status integer,
	OUT latency_ms double precision, OUT message text, OUT circuit text,
	OUT queued bigint, OUT oldest_queued_s double precision)
	RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_health(text) IS
	'Check every integration (or one): reachable, credentials accepted, status, latency, circuit breaker, rows queued by its asynchronous steps. Never raises for a failing remote.';

-------------------------------------------------------------------------------
-- Enrichment
-------------------------------------------------------------------------------

CREATE FUNCTION anomali_validate_config(config jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION anomali_validate_config(jsonb) IS
	'Raise for a bad enrichment configuration or an unknown integration; return it otherwise.';

CREATE FUNCTION anomali_enrich(event jsonb, config jsonb) RETURNS jsonb
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_enrich(jsonb, jsonb) IS
	'Enrich one event: extract observables, ask ThreatStream, write verdicts under arcanna.ioc.';

CREATE FUNCTION anomali_classify(value text, OUT type text, OUT observable text,
								 OUT non_public boolean)
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION anomali_classify(text) IS
	'How a value is read as an observable: its type, canonical spelling, and whether it is non-public.';

-------------------------------------------------------------------------------
-- Saved enrichment steps and the trigger
-------------------------------------------------------------------------------

CREATE TABLE step (
	name		text PRIMARY KEY CHECK (name <> ''),
	config		jsonb NOT NULL,
	enabled		boolean NOT NULL DEFAULT true,
	strict		boolean NOT NULL DEFAULT false,
	mode		text NOT NULL DEFAULT 'sync' CHECK (mode IN ('sync', 'async')),
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON step FROM PUBLIC;
COMMENT ON TABLE step IS
	'Saved enrichment steps: a named configuration, enabled or not; strict steps raise instead of recording errors; async steps are finished by a background worker after commit.';

CREATE VIEW steps AS
	SELECT name, config ->> 'integration' AS integration, config, enabled, strict, mode,
		   created_at, updated_at
	FROM step;
REVOKE ALL ON steps FROM PUBLIC;
COMMENT ON VIEW steps IS 'Saved enrichment steps.';

CREATE TRIGGER step_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON step
	FOR EACH STATEMENT EXECUTE FUNCTION anomali_integration_changed();

CREATE FUNCTION anomali_create_step(name text, config jsonb,
									enabled boolean DEFAULT true,
									strict boolean DEFAULT false,
									mode text DEFAULT 'sync')
	RETURNS void LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
	BEGIN ATOMIC
		INSERT INTO anomali_ts.step (name, config, enabled, strict, mode)
		VALUES (name, anomali_ts.anomali_validate_config(config), enabled, strict, mode);
	END;
COMMENT ON FUNCTION anomali_create_step(text, jsonb, boolean, boolean, text) IS
	'Save a named enrichment step after validating its configuration; mode sync (in the trigger) or async (by a background worker after commit).';

CREATE FUNCTION anomali_alter_step(name text, config jsonb DEFAULT NULL,
								   strict boolean DEFAULT NULL,
								   mode text DEFAULT NULL)
	RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF anomali_alter_step.mode = 'async' THEN
		-- Attachments whose table or jsonb column is gone are left alone,
		-- as the worker leaves them
		PERFORM anomali_ts.anomali_check_async_attachment(a.relid::regclass, a.column_name,
		                                                  a.step_name, 'async'),
				anomali_ts.anomali_create_queue_index(a.relid::regclass, a.column_name)
		   FROM anomali_ts.attachment a
		   JOIN pg_class c ON c.oid = a.relid
		   JOIN pg_attribute t ON t.attrelid = a.relid AND t.attname = a.column_name
							  AND NOT t.attisdropped AND t.atttypid = 'jsonb'::regtype
		  WHERE a.step_name = anomali_alter_step.name;
	END IF;
	UPDATE anomali_ts.step s
	   SET config = coalesce(anomali_ts.anomali_validate_config(anomali_alter_step.config), s.config),
		   strict = coalesce(anomali_alter_step.strict, s.strict),
		   mode = coalesce(anomali_alter_step.mode, s.mode),
		   updated_at = now()
	 WHERE s.name = anomali_alter_step.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'enrichment step "%" does not exist', name
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION anomali_alter_step(text, jsonb, boolean, text) IS
	'Replace the configuration, strictness or mode of a step; NULL keeps it.';

CREATE FUNCTION anomali_set_step_enabled(name text, enabled boolean)
	RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	UPDATE anomali_ts.step s
	   SET enabled = anomali_set_step_enabled.enabled, updated_at = now()
	 WHERE s.name = anomali_set_step_enabled.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'enrichment step "%" does not exist', name
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION anomali_set_step_enabled(text, boolean) IS
	'Switch a step on or off; its configuration is kept.';

CREATE FUNCTION anomali_enable_step(name text) RETURNS void LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
	BEGIN ATOMIC
		SELECT anomali_ts.anomali_set_step_enabled(name, true);
	END;
COMMENT ON FUNCTION anomali_enable_step(text) IS 'Enable a step with the configuration it had.';

CREATE FUNCTION anomali_disable_step(name text) RETURNS void LANGUAGE sql VOLATILE
	SET search_path = pg_catalog, pg_temp
	BEGIN ATOMIC
		SELECT anomali_ts.anomali_set_step_enabled(name, false);
	END;
COMMENT ON FUNCTION anomali_disable_step(text) IS
	'Disable a step: rows pass through untouched; the configuration is kept.';

CREATE FUNCTION anomali_drop_step(name text, if_exists boolean DEFAULT false)
	RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	DELETE FROM anomali_ts.step s WHERE s.name = anomali_drop_step.name;
	IF NOT FOUND AND NOT if_exists THEN
		RAISE EXCEPTION 'enrichment step "%" does not exist', name
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;
COMMENT ON FUNCTION anomali_drop_step(text, boolean) IS
	'Remove a step; triggers still naming it store rows unenriched with a warning.';

CREATE FUNCTION anomali_enrich_trigger() RETURNS trigger
	AS 'MODULE_PATHNAME' LANGUAGE C;
COMMENT ON FUNCTION anomali_enrich_trigger() IS
	'BEFORE INSERT/UPDATE row trigger: enrich column TG_ARGV[1] with step TG_ARGV[0].';

-- Which step enriches which table and column: the background workers read
-- it to find queued rows.  (Declared before the functions that use it.)
CREATE TABLE attachment (
	relid		oid NOT NULL,
	column_name	name NOT NULL,
	step_name	text NOT NULL,
	PRIMARY KEY (relid, column_name, step_name)
);
REVOKE ALL ON attachment FROM PUBLIC;
COMMENT ON TABLE attachment IS
	'Tables and columns each step is attached to (anomali_attach_step).';

-- An asynchronous step marks rows with its own name, so it must be the
-- only step on its column; and its worker reads plain tables only.
CREATE FUNCTION anomali_check_async_attachment(tbl regclass, column_name name,
											   step_name text, mode text)
	RETURNS void LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	other text;
BEGIN
	SELECT a.step_name INTO other
	  FROM anomali_ts.attachment a JOIN anomali_ts.step s ON s.name = a.step_name
	 WHERE a.relid = tbl AND a.column_name = anomali_check_async_attachment.column_name
	   AND a.step_name <> anomali_check_async_attachment.step_name
	   AND (anomali_check_async_attachment.mode = 'async' OR s.mode = 'async')
	 LIMIT 1;
	IF other IS NOT NULL THEN
		RAISE EXCEPTION 'column "%" of % already has enrichment step "%"', column_name, tbl, other
			USING ERRCODE = 'object_in_use',
				  DETAIL = 'An asynchronous step must be the only step on its column.',
				  HINT = 'Use another column, or one step with all the fields.';
	END IF;
	IF anomali_check_async_attachment.mode = 'async'
	   AND (SELECT relkind FROM pg_class WHERE oid = tbl) = 'p' THEN
		RAISE EXCEPTION 'asynchronous steps cannot be attached to partitioned table %', tbl
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Attach the step to each partition.';
	END IF;
	-- A background worker cannot see another session's temporary table
	IF anomali_check_async_attachment.mode = 'async'
	   AND (SELECT relpersistence FROM pg_class WHERE oid = tbl) = 't' THEN
		RAISE EXCEPTION 'asynchronous steps cannot be attached to temporary table %', tbl
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Use a synchronous step, or a table that is not temporary.';
	END IF;
END
$$;
COMMENT ON FUNCTION anomali_check_async_attachment(regclass, name, text, text) IS
	'Refuse an asynchronous step on a column that has another step, or on a partitioned or temporary table.';
REVOKE ALL ON FUNCTION anomali_check_async_attachment(regclass, name, text, text) FROM PUBLIC;

-- Queued rows of asynchronous steps are found through a partial index on
-- the column; it holds no entry for a row that is not queued.  Tables of
-- synchronous steps never have queued rows, so they do not pay for it.
CREATE FUNCTION anomali_create_queue_index(tbl regclass, column_name name)
	RETURNS void LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	-- The predicate as PostgreSQL prints it back: an index with it is ours
	predicate text := format('((%s #>> ''{arcanna,ioc,global,pending_step}''::text[]) IS NOT NULL)',
							 quote_ident(column_name));
	relname name;
	nsp oid;
	preferred text;
BEGIN
	IF EXISTS (SELECT 1 FROM pg_index i
				WHERE i.indrelid = tbl AND i.indisvalid AND NOT i.indisunique
				  AND pg_get_expr(i.indexprs, i.indrelid) = '1'
				  AND pg_get_expr(i.indpred, i.indrelid) = predicate) THEN
		RETURN;
	END IF;
	SELECT c.relname, c.relnamespace INTO relname, nsp FROM pg_class c WHERE c.oid = tbl;
	preferred := format('%s_%s_anomali_queue', relname, column_name);
	-- A name that would be cut to 63 bytes, or is taken, could name another
	-- relation: then PostgreSQL chooses a free one
	IF octet_length(preferred) <= 63 AND NOT EXISTS
		(SELECT 1 FROM pg_class c WHERE c.relname = preferred AND c.relnamespace = nsp) THEN
		EXECUTE format('CREATE INDEX %I ON %s ((1)) WHERE %s', preferred, tbl, predicate);
	ELSE
		EXECUTE format('CREATE INDEX ON %s ((1)) WHERE %s', tbl, predicate);
	END IF;
END
$$;
COMMENT ON FUNCTION anomali_create_queue_index(regclass, name) IS
	'Create the partial index through which the background worker finds the queued rows of a column.';
REVOKE ALL ON FUNCTION anomali_create_queue_index(regclass, name) FROM PUBLIC;

CREATE FUNCTION anomali_attach_step(tbl regclass, column_name name, step_name text,
									on_update boolean DEFAULT false)
	RETURNS text LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	trigger_name name := left('anomali_ts_' || step_name, 63);
	coltype regtype;
BEGIN
	SELECT a.atttypid::regtype INTO coltype
	  FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attname = column_name AND NOT a.attisdropped;
	IF coltype IS NULL THEN
		RAISE EXCEPTION 'column "%" of relation % does not exist', column_name, tbl
			USING ERRCODE = 'undefined_column';
	END IF;
	IF coltype <> 'jsonb'::regtype THEN
		RAISE EXCEPTION 'column "%" of relation % is %, not jsonb', column_name, tbl, coltype
			USING ERRCODE = 'datatype_mismatch';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM anomali_ts.step s WHERE s.name = step_name) THEN
		RAISE EXCEPTION 'enrichment step "%" does not exist', step_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with anomali_create_step().';
	END IF;
	PERFORM anomali_ts.anomali_check_async_attachment(tbl, column_name, step_name,
		(SELECT s.mode FROM anomali_ts.step s WHERE s.name = step_name));
	EXECUTE format('CREATE TRIGGER %I BEFORE INSERT%s ON %s FOR EACH ROW '
				   'EXECUTE FUNCTION anomali_ts.anomali_enrich_trigger(%L, %L)',
				   trigger_name,
				   CASE WHEN on_update THEN format(' OR UPDATE OF %I', column_name) ELSE '' END,
				   tbl, step_name, column_name);
	IF (SELECT s.mode FROM anomali_ts.step s WHERE s.name = step_name) = 'async' THEN
		PERFORM anomali_ts.anomali_create_queue_index(tbl, column_name);
	END IF;
	INSERT INTO anomali_ts.attachment VALUES (tbl, column_name, step_name)
		ON CONFLICT DO NOTHING;
	RETURN trigger_name;
END
$$;
COMMENT ON FUNCTION anomali_attach_step(regclass, name, text, boolean) IS
	'Create the enrichment trigger for a step on a jsonb column; returns the trigger name.';

CREATE FUNCTION anomali_detach_step(tbl regclass, step_name text) RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	EXECUTE format('DROP TRIGGER %I ON %s', left('anomali_ts_' || step_name, 63), tbl);
	DELETE FROM anomali_ts.attachment a
	 WHERE a.relid = tbl AND a.step_name = anomali_detach_step.step_name;
END
$$;
COMMENT ON FUNCTION anomali_detach_step(regclass, text) IS
	'Drop the enrichment trigger of a step from a table.';

-------------------------------------------------------------------------------
-- Cache and counters
-------------------------------------------------------------------------------

CREATE FUNCTION anomali_cache_stats(
	OUT shared boolean, OUT entries bigint, OUT capacity bigint,
	OUT hits bigint, OUT misses bigint, OUT stores bigint, OUT evictions bigint)
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_cache_stats() IS
	'Size and hit/miss counters of the lookup cache (shared when preloaded).';

CREATE FUNCTION anomali_cache_clear() RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_cache_clear() IS
	'Empty the lookup cache and reset its counters; returns entries removed.';

CREATE FUNCTION anomali_cache_contents(
	OUT database oid, OUT type text, OUT value text,
	OUT indicators integer, OUT ttl_left_s double precision)
	RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_cache_contents() IS
	'Live entries of the lookup cache.';

CREATE FUNCTION anomali_session_stats(OUT requests bigint, OUT connections bigint)
	AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_session_stats() IS
	'HTTP requests sent and connections opened by this session.';

-- Administration is explicit: nothing below is usable by PUBLIC.
REVOKE ALL ON FUNCTION
	anomali_create_integration(text, text, text, text, boolean, boolean),
	anomali_alter_integration(text, text, text, boolean, text, boolean),
	anomali_set_integration_key(text, text, boolean),
	anomali_drop_integration(text, boolean),
	anomali_rotate_master_key(),
	anomali_purge_master_keys(),
	anomali_health(text),
	anomali_validate_config(jsonb),
	anomali_enrich(jsonb, jsonb),
	anomali_create_step(text, jsonb, boolean, boolean, text),
	anomali_alter_step(text, jsonb, boolean, text),
	anomali_set_step_enabled(text, boolean),
	anomali_enable_step(text),
	anomali_disable_step(text),
	anomali_drop_step(text, boolean),
	anomali_attach_step(regclass, name, text, boolean),
	anomali_detach_step(regclass, text),
	anomali_cache_stats(),
	anomali_cache_clear(),
	anomali_cache_contents(),
	anomali_session_stats(),
	-- Trigger functions: EXECUTE is checked when a trigger is created, not
	-- when it fires, so pipeline roles insert through triggers an
	-- administrator attached, but cannot attach their own.
	anomali_enrich_trigger(),
	anomali_integration_changed()
FROM PUBLIC;

-------------------------------------------------------------------------------
-- Enrichment of stored rows
-------------------------------------------------------------------------------

CREATE FUNCTION anomali_enrich_batch(tbl regclass, column_name name, step_name text,
									 after tid, batch_rows integer,
									 before tid DEFAULT '(4294967295,0)',
									 OUT last_ctid tid, OUT rows_seen integer,
									 OUT rows_enriched integer, OUT observables integer,
									 OUT requests integer)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION anomali_enrich_batch(regclass, name, text, tid, integer, tid) IS
	'Enrich the next batch of stored rows between two ctids, looking up the batch''s unique observables together.';

-- No SET clause: a procedure with one may not COMMIT.
CREATE PROCEDURE anomali_enrich_table(tbl regclass, column_name name, step_name text,
									  batch_rows integer DEFAULT 1000)
	LANGUAGE plpgsql AS $$
DECLARE
	pos tid := '(0,0)';
	-- Rows rewritten by this run move past the table's end: stop there.
	stop tid := format('(%s,0)', pg_relation_size(tbl)
	                             / current_setting('block_size')::bigint)::tid;
	b record;
	seen bigint := 0;
	enriched bigint := 0;
	requests bigint := 0;
	started timestamptz := clock_timestamp();
	secs double precision;
BEGIN
	LOOP
		SELECT * INTO b
		  FROM anomali_ts.anomali_enrich_batch(tbl, column_name, step_name, pos,
		                                       batch_rows, stop);
		EXIT WHEN b.rows_seen = 0;
		pos := b.last_ctid;
		seen := seen + b.rows_seen;
		enriched := enriched + b.rows_enriched;
		requests := requests + b.requests;
		COMMIT;
		secs := greatest(extract(epoch FROM clock_timestamp() - started), 0.001);
		RAISE NOTICE 'anomali_ts: % rows read, % enriched, % skipped (done before, NULL or not an object), % requests, % rows/s',
			seen, enriched, seen - enriched, requests, round((seen / secs)::numeric);
	END LOOP;
END
$$;
COMMENT ON PROCEDURE anomali_enrich_table(regclass, name, text, integer) IS
	'Enrich every stored row of a table with a step, a committed batch at a time; resumable (finished rows are skipped).';

REVOKE ALL ON FUNCTION anomali_enrich_batch(regclass, name, text, tid, integer, tid) FROM PUBLIC;
REVOKE ALL ON PROCEDURE anomali_enrich_table(regclass, name, text, integer) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Reporting views
-------------------------------------------------------------------------------

-- Creates five views over one event table, named <prefix>_ioc_*, in the
-- table's schema.  They read only that table, so a dashboard role can be
-- granted SELECT on them with no access to integrations or keys.
CREATE FUNCTION anomali_create_report_views(tbl regclass, column_name name,
											prefix text DEFAULT NULL)
	RETURNS SETOF text LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	nsp name;
	rel name;
	p text;
	col text := quote_ident(column_name);
	fields text;
BEGIN
	SELECT n.nspname, c.relname INTO nsp, rel
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
	p := coalesce(prefix, rel);
	fields := format('%s -> ''arcanna'' -> ''ioc''', col);

	-- Events per global result.
	EXECUTE format($v$CREATE VIEW %I.%I AS
		SELECT coalesce(%s #>> '{global,result}', 'not_enriched') AS result,
		       count(*) AS events
		  FROM %s GROUP BY 1$v$, nsp, p || '_ioc_results', fields, tbl);
	RETURN NEXT p || '_ioc_results';

	-- One row per malicious observable of each malicious event.
	EXECUTE format($v$CREATE VIEW %I.%I AS
		SELECT t.ctid AS row_ctid, f.key AS path, o ->> 'value' AS observable,
		       o ->> 'type' AS type, (o ->> 'positive_hits')::int AS positive_hits,
		       (o ->> 'max_confidence')::int AS max_confidence, o ->> 'severity' AS severity,
		       o -> 'itypes' AS itypes, %s AS event
		  FROM %s t, jsonb_each(%s -> 'fields') f, jsonb_array_elements(f.value -> 'observables') o
		 WHERE (%s #>> '{global,is_malicious}')::boolean
		   AND o ->> 'result' = 'malicious'$v$,
		nsp, p || '_ioc_malicious', col, tbl, fields, fields);
	RETURN NEXT p || '_ioc_malicious';

	-- Malicious observables by the number of events they appear in.
	EXECUTE format($v$CREATE VIEW %I.%I AS
		SELECT observable, type, count(DISTINCT row_ctid) AS events,
		       max(max_confidence) AS max_confidence,
		       array_agg(DISTINCT path ORDER BY path) AS paths
		  FROM %I.%I GROUP BY observable, type$v$,
		nsp, p || '_ioc_top_observables', nsp, p || '_ioc_malicious');
	RETURN NEXT p || '_ioc_top_observables';

	-- Failed lookups by kind of error (numbers folded so kinds group).
	EXECUTE format($v$CREATE VIEW %I.%I AS
		SELECT regexp_replace(o ->> 'error', '\d+', 'N', 'g') AS error_kind,
		       count(*) AS observables, count(DISTINCT t.ctid) AS events
		  FROM %s t, jsonb_each(%s -> 'fields') f, jsonb_array_elements(f.value -> 'observables') o
		 WHERE o ->> 'result' = 'error'
		 GROUP BY 1$v$, nsp, p || '_ioc_errors', tbl, fields);
	RETURN NEXT p || '_ioc_errors';

	-- Observables seen on events versus lookups the events needed.
	EXECUTE format($v$CREATE VIEW %I.%I AS
		SELECT count(*) FILTER (WHERE %s IS NOT NULL) AS events_enriched,
		       coalesce(sum((%s #>> '{global,observables}')::int), 0) AS observables_seen,
		       coalesce(sum((%s #>> '{global,skipped}')::int), 0) AS observables_skipped,
		       coalesce(sum((%s #>> '{global,looked_up}')::int), 0) AS observables_answered,
		       coalesce(sum((%s #>> '{global,from_cache}')::int), 0) AS answered_from_cache,
		       coalesce(sum((%s #>> '{global,looked_up}')::int
		                  - (%s #>> '{global,from_cache}')::int), 0) AS answered_by_threatstream,
		       coalesce(sum((%s #>> '{global,errors}')::int), 0) AS observables_failed
		  FROM %s$v$, nsp, p || '_ioc_lookups',
		fields, fields, fields, fields, fields, fields, fields, fields, tbl);
	RETURN NEXT p || '_ioc_lookups';
END
$$;
COMMENT ON FUNCTION anomali_create_report_views(regclass, name, text) IS
	'Create dashboard views <prefix>_ioc_results, _malicious, _top_observables, _errors and _lookups over an event table.';
REVOKE ALL ON FUNCTION anomali_create_report_views(regclass, name, text) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Asynchronous steps: the queue and the workers
-------------------------------------------------------------------------------

-- Rows queued by asynchronous steps, per attached table and column.
CREATE FUNCTION anomali_queue(OUT tbl regclass, OUT column_name name, OUT step_name text,
							  OUT queued bigint, OUT retrying bigint,
							  OUT oldest_queued_at timestamptz, OUT oldest_age interval)
	RETURNS SETOF record LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	a record;
BEGIN
	FOR a IN
		-- Attachments whose table or jsonb column is gone hold no queue
		SELECT at.relid::regclass AS rel, at.column_name AS col, at.step_name AS step
		  FROM anomali_ts.attachment at
		  JOIN anomali_ts.step s ON s.name = at.step_name AND s.mode = 'async'
		  JOIN pg_class c ON c.oid = at.relid
		  JOIN pg_attribute t ON t.attrelid = at.relid AND t.attname = at.column_name
							 AND NOT t.attisdropped AND t.atttypid = 'jsonb'::regtype
		 ORDER BY 1, 2, 3
	LOOP
		tbl := a.rel;
		column_name := a.col;
		step_name := a.step;
		-- Only values in the form the extension writes are converted, so a
		-- malformed row is counted without breaking the view.
		EXECUTE format('SELECT count(*), '
					   'count(*) FILTER (WHERE jsonb_typeof(%1$I #> ''{arcanna,ioc,global,attempts}'') = ''number'' '
					   '  AND (%1$I #>> ''{arcanna,ioc,global,attempts}'')::numeric > 0), '
					   'min(CASE WHEN (%1$I #>> ''{arcanna,ioc,global,queued_at}'') '
					   '  ~ ''^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'' '
					   '  THEN (%1$I #>> ''{arcanna,ioc,global,queued_at}'')::timestamptz END) '
					   'FROM ONLY %2$s WHERE (%1$I #>> ''{arcanna,ioc,global,pending_step}'') IS NOT NULL '
					   'AND (%1$I #>> ''{arcanna,ioc,global,pending_step}'') = $1',
					   a.col, a.rel)
			INTO queued, retrying, oldest_queued_at USING a.step;
		oldest_age := now() - oldest_queued_at;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION anomali_queue() IS
	'Rows queued by asynchronous steps: how many, how many waiting for a retry, and the oldest.';

CREATE VIEW queue AS SELECT * FROM anomali_queue();
COMMENT ON VIEW queue IS 'Rows queued by asynchronous steps, per table, column and step.';

CREATE FUNCTION anomali_worker_status(OUT database oid, OUT pid integer, OUT state text,
									  OUT rows_finished bigint, OUT last_batch_at timestamptz)
	RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION anomali_worker_status() IS
	'The background workers of asynchronous steps, one per database while it has work.';

REVOKE ALL ON FUNCTION anomali_queue(), anomali_worker_status() FROM PUBLIC;
REVOKE ALL ON queue FROM PUBLIC;
