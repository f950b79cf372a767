-- Classification by parsing, canonical spellings, refanging, non-public ranges.
SET search_path = public, anomali_ts;

SELECT v AS input, (anomali_classify(v)).*
  FROM unnest(ARRAY[
	'198.51.100.7',
	'203.0.113.7',
	'192.0.2[.]10',
	'010.0.0.1',
	'192.000.002.012',
	'999.888.777.666',
	'1.2.3',
	'192.0.2.0/24',
	'2001:db8::1',
	'2001:0DB8:0:0::1',
	'2001:db8:1234:5678:9abc:def0:1234:5678',
	'fe80::1',
	'::ffff:198.51.100.7',
	'3395856CE81F2B7382DEE72602F798B642F14140',
	'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855',
	'44d88612fea8a8f36de82e1278abb02f',
	'44d88612fea8a8f36de82e1278abb02',
	' example.com ' || chr(10),
	'malicious.example.com.',
	'..',
	'.',
	'Example.COM',
	'test[.]example[.]com',
	'hxxps://example[.]com/a',
	'https://www.example.com/p?q=1',
	'http://[2001:db8::1]:8080/x',
	'http://user:pw@evil.example.net:81/',
	'1.0.0.127.localhost.localdomain',
	'_ldap._tcp.example.com',
	'10.1.2.3', '172.16.0.9', '192.168.0.1', '127.0.0.1', '100.64.0.1',
	'169.254.169.254',
	'host.local',
	'just-a-word',
	'',
	'a b.example.com',
	-- A defanged scheme is restored only where a scheme is.
	'fxpro.com',
	'hxxp.example.com',
	'http://hxxp.com/',
	'hxxp[://]example[.]com/x',
	'FXP://files.example.com/a',
	-- IPv4-mapped IPv6 is the IPv4 address it carries.
	'::ffff:203.0.113.7',
	-- Labels may not start or end with a hyphen.
	'-example.com',
	'example-.com',
	'a-b.example.com'
  ]) AS v;
