-- D0 and D1: the enrichment trigger a user writes first, in PL/Python.
--
-- It does what the anomali_ts step does, the plain way: it extracts the
-- same fields, classifies each string with simple rules (strict IPv4,
-- IPv6 through the ipaddress module, 32/40/64 hex digit hashes, host names
-- with a dot), skips the same non-public addresses and names the extension
-- skips by default, sends one urllib.request per observable
-- (GET <url>?value=..&type=..&limit=1000 with "Authorization: apikey
-- user:key") and applies the same verdict rules: an indicator counts when
-- its value equals the observable, its status is active and its confidence
-- is at least 50; one such hit makes the observable malicious.  It writes a
-- small result under "py_ioc" into the row.
--
--   bench.py_enrich('nocache', TAG)   D0: every observable of every event is asked
--   bench.py_enrich('cache', TAG)     D1: answers are kept in a dict in GD for
--                                     the life of the connection (cold at start)
--
-- TAG is put into the simulator URL (/opt/latency_ms=N,tag=TAG/...) so the
-- simulator counts each variant's requests apart.  The connection settings
-- are read once per session from bench.py_conf, which only a superuser can
-- read (it holds the simulator's throwaway key).

CREATE TABLE bench.py_conf (
	base_url	text NOT NULL,		-- http://127.0.0.1:PORT
	latency_ms	integer NOT NULL,
	auth		text NOT NULL,		-- "apikey user:key"
	fields		text NOT NULL,		-- the step's ioc_fields
	threshold	integer NOT NULL DEFAULT 50,
	positive_hits integer NOT NULL DEFAULT 1,
	timeout_s	double precision NOT NULL DEFAULT 5
);
REVOKE ALL ON bench.py_conf FROM PUBLIC;

CREATE FUNCTION bench.py_enrich() RETURNS trigger LANGUAGE plpython3u AS $py$
S = GD.get('bench_py')
if S is None:
    import ipaddress
    import json
    import re
    import urllib.parse
    import urllib.request

    conf = plpy.execute("SELECT * FROM bench.py_conf")[0]
    S = {'json': json, 'urlencode': urllib.parse.urlencode,
         'Request': urllib.request.Request, 'conf': conf, 'cache': {},
         # No proxy: the only server this may talk to is the simulator.
         'opener': urllib.request.build_opener(urllib.request.ProxyHandler({}))}

    IPV4 = re.compile(r'^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
                      r'(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$')
    HASH = re.compile(r'^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$')
    DOMAIN = re.compile(r'^([A-Za-z0-9_-]{1,63}\.)+[A-Za-z0-9_-]{1,63}$')
    # The extension's non-public ranges (RFC 6890 and successors)
    PRIVATE4 = [ipaddress.ip_network(n) for n in (
        '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8',
        '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24',
        '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
        '203.0.113.0/24', '224.0.0.0/3')]
    PRIVATE6 = [ipaddress.ip_network(n) for n in (
        '::/127', 'fc00::/7', 'fe80::/10', 'ff00::/8', '2001:db8::/32', '100::/64')]
    LOCAL_TLDS = {'localhost', 'local', 'localdomain', 'internal', 'lan', 'home',
                  'arpa', 'invalid', 'corp', 'intranet', 'private', 'test'}

    def classify(v):
        """(type sent to the API, canonical value, non-public) or None"""
        v = v.strip()
        if IPV4.match(v):
            a = ipaddress.IPv4Address(v)
            return 'ip', v, any(a in n for n in PRIVATE4)
        if ':' in v:
            try:
                a = ipaddress.IPv6Address(v)
            except ValueError:
                return None
            if a.ipv4_mapped is not None:
                return 'ipv6', a.compressed, any(a.ipv4_mapped in n for n in PRIVATE4)
            return 'ipv6', a.compressed, any(a in n for n in PRIVATE6)
        if HASH.match(v):
            return 'md5', v.lower(), False     # every hash is type md5 on ThreatStream
        if v.endswith('.'):
            v = v[:-1]
        if len(v) <= 253 and DOMAIN.match(v) and not v.rsplit('.', 1)[1].isdigit():
            v = v.lower()
            return 'domain', v, v.rsplit('.', 1)[1] in LOCAL_TLDS
        return None

    def values(ev, path):
        """Strings at a path; a key may itself contain dots (Zeek's id.resp_h)"""
        if path in ev:
            found = [ev[path]]
        else:
            found = [ev]
            for part in path.split('.'):
                nxt = []
                for x in found:
                    if part == '[*]':
                        if isinstance(x, list):
                            nxt.extend(x)
                    elif isinstance(x, dict) and part in x:
                        nxt.append(x[part])
                found = nxt
        return [x for x in found if isinstance(x, str)]

    S['classify'] = classify
    S['values'] = values
    S['fields'] = [f.strip() for f in conf['fields'].split(',') if f.strip()]
    GD['bench_py'] = S

json = S['json']
conf = S['conf']
mode, tag = TD['args'][0], TD['args'][1]
url = '%s/opt/latency_ms=%d,tag=%s/api/v2/intelligence/' % (
    conf['base_url'], conf['latency_ms'], tag)

raw = TD['new']['ev']
if raw is None:
    return None
ev = json.loads(raw)
if not isinstance(ev, dict):
    return None

observables = {}
skipped = 0
for path in S['fields']:
    for v in S['values'](ev, path):
        c = S['classify'](v)
        if c is None:
            continue
        if c[2]:
            skipped += 1
            continue
        observables[(c[0], c[1])] = True

cache = S['cache'] if mode == 'cache' else None
malicious = []
errors = 0
for typ, value in observables:
    answer = cache.get((typ, value)) if cache is not None else None
    if answer is None:
        q = S['urlencode']({'value': value, 'type': typ, 'limit': 1000})
        req = S['Request'](url + '?' + q, headers={'Authorization': conf['auth']})
        try:
            with S['opener'].open(req, timeout=conf['timeout_s']) as r:
                doc = json.loads(r.read())
            answer = [(o.get('value'), o.get('status'), o.get('confidence'))
                      for o in (doc.get('objects') or [])]
        except Exception:
            errors += 1
            continue
        if cache is not None:
            cache[(typ, value)] = answer
    hits = 0
    for ivalue, status, confidence in answer:
        if not isinstance(ivalue, str):
            continue
        same = ivalue.lower() == value if typ in ('domain', 'md5') else ivalue == value
        if same and status == 'active' and isinstance(confidence, int) \
                and confidence >= conf['threshold']:
            hits += 1
    if hits >= conf['positive_hits']:
        malicious.append(value)

if malicious:
    result = 'malicious'
elif errors:
    result = 'error'
elif observables:
    result = 'not_malicious'
else:
    result = 'unknown'
ev['py_ioc'] = {'result': result, 'malicious': malicious,
                'looked_up': len(observables), 'errors': errors, 'skipped': skipped}
TD['new']['ev'] = json.dumps(ev)
return 'MODIFY'
$py$;
