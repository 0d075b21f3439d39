package masking

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func one(rule string) map[string]int { return map[string]int{rule: 1} }

func TestEmail(t *testing.T) {
	m := newMasker(t, Options{})
	runMaskCases(t, m, []maskCase{
		{"plain", "write to alice@northwind.example today",
			"write to a***@n***.example today", one("email")},
		{"subdomain and plus", "bob.smith+news@mail.example.co.uk",
			"b***@m***.uk", one("email")},
		{"mailto", "<a href=\"mailto:carol@example.com\">",
			"<a href=\"mailto:c***@e***.com\">", one("email")},
		{"in json", `{"email":"dave@example.org","n":1}`,
			`{"email":"d***@e***.org","n":1}`, one("email")},
		{"url encoded", "https://x.example/?to=erin%40example.net&y=1",
			"https://x.example/?to=e***%40e***.net&y=1", one("email")},
		{"sentence end", "Ask frank@example.com.", "Ask f***@e***.com.", one("email")},
		{"upper case", "GRACE@EXAMPLE.COM", "G***@E***.COM", one("email")},
		{"two", "a@b.example, c@d.example", "a***@b***.example, c***@d***.example",
			map[string]int{"email": 2}},
		{"no tld", "foo@bar", "foo@bar", nil},
		{"localhost", "user@localhost", "user@localhost", nil},
		{"version pin", "npm i left-pad@1.3.0", "npm i left-pad@1.3.0", nil},
		{"decorator", "@app.route('/x')", "@app.route('/x')", nil},
		{"handle", "ping @alice.dev on chat", "ping @alice.dev on chat", nil},
		{"numeric tld", "x@10.0.0.1", "x@10.0.0.1", nil},
		{"label runs on", "a@b.AA-001-01", "a@b.AA-001-01", nil},
		{"footnote", "mail a@example.com*", "mail a***@e***.com*", one("email")},
		{"ellipsis", "a@example.com...", "a***@e***.com...", one("email")},
		{"encoded list runs together", "to=a%40example.com%2Cb%40example.org",
			"to=[MASKED:email]", one("email")},
		{"chained", "a@b.example@c.example", "[MASKED:email]", one("email")},
		{"long local part", repeat("abc.", 200) + "x@example.com", "a***@e***.com",
			one("email")},
		{"url credentials are not an address",
			"postgres://app:pw1@db.example.com/app",
			"postgres://app:[MASKED:url_password]@db.example.com/app",
			one("url_password")},
	})
}

func TestCard(t *testing.T) {
	m := newMasker(t, Options{})
	runMaskCases(t, m, []maskCase{
		{"visa compact", "4111111111111111", "**** **** **** 1111", one("card")},
		{"visa spaced", "card 4242 4242 4242 4242 declined",
			"card **** **** **** 4242 declined", one("card")},
		{"mastercard dashed", "5555-5555-5555-4444", "**** **** **** 4444", one("card")},
		{"mastercard 2-series", "2223003122003222", "**** **** **** 3222", one("card")},
		{"amex 4-6-5", "Amex 3714-496353-98431 on file",
			"Amex **** **** **** 8431 on file", one("card")},
		{"amex compact", "378282246310005", "**** **** **** 0005", one("card")},
		{"diners 4-6-4", "3056 930902 5904", "**** **** **** 5904", one("card")},
		{"discover", "6011111111111117", "**** **** **** 1117", one("card")},
		{"jcb", "3530111333300000", "**** **** **** 0000", one("card")},
		{"in json", `{"card_number":"4111111111111111"}`,
			`{"card_number":"**** **** **** 1111"}`, one("card")},
		{"after a group", "ref 1234 4111 1111 1111 1111",
			"ref 1234 **** **** **** 1111", one("card")},
		{"two in a row", "4111111111111111,5555555555554444",
			"**** **** **** 1111,**** **** **** 4444", map[string]int{"card": 2}},
		{"luhn invalid", "4111111111111112", "4111111111111112", nil},
		{"ms timestamp", "at 1700000000000 ms", "at 1700000000000 ms", nil},
		{"us timestamp", "1700000000000000", "1700000000000000", nil},
		{"order id", "ORD-20240115-000123", "ORD-20240115-000123", nil},
		{"phone", "+49 151 2345 6789 0", "+49 151 2345 6789 0", nil},
		{"phone with plus", "+4111111111111111", "+4111111111111111", nil},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000",
			"123e4567-e89b-12d3-a456-426614174000", nil},
		{"digit uuid", "41111111-1111-1111-1111-111111111111",
			"41111111-1111-1111-1111-111111111111", nil},
		{"longer run", "41111111111111110000", "41111111111111110000", nil},
		{"glued to a word", "x4111111111111111", "x4111111111111111", nil},
		{"decimal", "3.4111111111111111", "3.4111111111111111", nil},
		{"odd grouping", "4111 11 1111 1111 111", "4111 11 1111 1111 111", nil},
		{"date and time", "2024-01-15 12:30:00", "2024-01-15 12:30:00", nil},
		{"issuer prefix 9", "9111111111111110", "9111111111111110", nil},
	})
}

func TestIBAN(t *testing.T) {
	m := newMasker(t, Options{})
	runMaskCases(t, m, []maskCase{
		{"grouped", "IBAN DE89 3704 0044 0532 0130 00 please",
			"IBAN [MASKED:iban] please", one("iban")},
		{"compact", "DE89370400440532013000", "[MASKED:iban]", one("iban")},
		{"gb", "GB29 NWBK 6016 1331 9268 19", "[MASKED:iban]", one("iban")},
		{"followed by a word", "GB29NWBK60161331926819 THEN",
			"[MASKED:iban] THEN", one("iban")},
		{"bad check digits", "DE89 3704 0044 0532 0130 02",
			"DE89 3704 0044 0532 0130 02", nil},
		{"wrong length", "DE89370400440532013000123", "DE89370400440532013000123", nil},
		{"lower case", "de89370400440532013000", "de89370400440532013000", nil},
		{"glued", "XDE89370400440532013000", "XDE89370400440532013000", nil},
	})
}

func TestSSN(t *testing.T) {
	off := newMasker(t, Options{})
	runMaskCases(t, off, []maskCase{
		{"off by default", "SSN 123-45-6789", "SSN 123-45-6789", nil},
	})
	on := newMasker(t, Options{Detectors: append(DefaultDetectors(), "national_id_us_ssn")})
	runMaskCases(t, on, []maskCase{
		{"valid", "SSN 123-45-6789.", "SSN ***-**-6789.", one("national_id_us_ssn")},
		{"area 000", "000-12-3456", "000-12-3456", nil},
		{"area 666", "666-12-3456", "666-12-3456", nil},
		{"area 9xx", "912-34-5678", "912-34-5678", nil},
		{"group 00", "123-00-4567", "123-00-4567", nil},
		{"serial 0000", "123-45-0000", "123-45-0000", nil},
		{"spaces", "123 45 6789", "123 45 6789", nil},
		{"longer chain", "1-123-45-6789", "1-123-45-6789", nil},
		{"after other digits", "id 42 123-45-6789", "id 42 ***-**-6789",
			one("national_id_us_ssn")},
	})
}

func TestJWT(t *testing.T) {
	m := newMasker(t, Options{})
	signed := jwtOf(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"1234"}`, "c2lnbmF0dXJl")
	unsigned := jwtOf(`{"alg":"none"}`, `{"sub":"x","iss":"y"}`, "")
	noAlg := jwtOf(`{"typ":"JWT"}`, `{"sub":"1234"}`, "c2ln")
	runMaskCases(t, m, []maskCase{
		{"signed", "token=" + signed + " end", "token=[MASKED:jwt] end",
			one("jwt")},
		{"alg none, empty signature", "t " + unsigned, "t [MASKED:jwt]",
			one("jwt")},
		{"in json", `{"id_token":"` + signed + `"}`, `{"id_token":"[MASKED:jwt]"}`,
			one("jwt")},
		{"header without alg", "x " + noAlg, "x " + noAlg, nil},
		{"two parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0",
			"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0", nil},
		{"not json", "eyJub3QganNvbg.eyJ4.eyJ5", "eyJub3QganNvbg.eyJ4.eyJ5", nil},
	})
}

func TestBearerAndAuthorization(t *testing.T) {
	m := newMasker(t, Options{})
	runMaskCases(t, m, []maskCase{
		{"header", "Authorization: Bearer abc123def456ghi789\n",
			"Authorization: Bearer [MASKED:bearer]\n", one("bearer")},
		{"short token in header", "Authorization: Bearer abc",
			"Authorization: Bearer [MASKED:bearer]", one("bearer")},
		{"curl", "curl -H 'Authorization: Bearer tok_9f8e7d6c5b' https://api.shop.example/",
			"curl -H 'Authorization: Bearer [MASKED:bearer]' https://api.shop.example/",
			one("bearer")},
		{"bare bearer", "use Bearer 9f8e7d6c5b4a3f2e1d0c", "use Bearer [MASKED:bearer]",
			one("bearer")},
		{"basic", "Authorization: Basic dXNlcjpwYXNzd29yZA==",
			"Authorization: Basic [MASKED:authorization]", one("authorization")},
		{"json header", `{"Authorization": "Token abc123"}`,
			`{"Authorization": "Token [MASKED:authorization]"}`, one("authorization")},
		{"bare credential", "authorization=s3cr3tvalue",
			"authorization=[MASKED:authorization]", one("authorization")},
		{"prose", "send a Bearer token in the Authorization header",
			"send a Bearer token in the Authorization header", nil},
		{"prose long word", "Bearer authentication", "Bearer authentication", nil},
		{"header name only", "Authorization:\n", "Authorization:\n", nil},
	})
}

func TestPrivateKey(t *testing.T) {
	m := newMasker(t, Options{})
	body := "MIIEowIBAAKCAQEA7\nabcdefghijklmnop\n"
	runMaskCases(t, m, []maskCase{
		{"rsa", "key:\n-----BEGIN RSA PRIVATE KEY-----\n" + body +
			"-----END RSA PRIVATE KEY-----\nafter",
			"key:\n[MASKED:private_key]\nafter", one("private_key")},
		{"openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\n" + body +
			"-----END OPENSSH PRIVATE KEY-----",
			"[MASKED:private_key]", one("private_key")},
		{"pkcs8 encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body +
			"-----END ENCRYPTED PRIVATE KEY-----", "[MASKED:private_key]",
			one("private_key")},
		{"ec", "-----BEGIN EC PRIVATE KEY-----\n" + body + "-----END EC PRIVATE KEY-----",
			"[MASKED:private_key]", one("private_key")},
		{"pgp", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + body +
			"-----END PGP PRIVATE KEY BLOCK-----\n", "[MASKED:private_key]\n",
			one("private_key")},
		{"json escaped", `{"key":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}`,
			`{"key":"[MASKED:private_key]\n"}`, one("private_key")},
		{"missing end", "x\n-----BEGIN PRIVATE KEY-----\n" + body + "and the rest",
			"x\n[MASKED:private_key]", one("private_key")},
		{"two blocks", "-----BEGIN PRIVATE KEY-----\na\n-----END PRIVATE KEY-----\nmid\n" +
			"-----BEGIN PRIVATE KEY-----\nb\n-----END PRIVATE KEY-----",
			"[MASKED:private_key]\nmid\n[MASKED:private_key]",
			map[string]int{"private_key": 2}},
		{"text after key still masked", "-----BEGIN PRIVATE KEY-----\na\n" +
			"-----END PRIVATE KEY-----\nmail eve@example.com",
			"[MASKED:private_key]\nmail e***@e***.com",
			map[string]int{"private_key": 1, "email": 1}},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
			"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", nil},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
			"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----", nil},
	})
}

func TestVendorTokens(t *testing.T) {
	m := newMasker(t, Options{})
	alnum36 := repeat("0123456789abcdefghijklmnopqrstuvwxyzAB", 36)
	runMaskCases(t, m, []maskCase{
		{"aws access key", "AKIAIOSFODNN7EXAMPLE", "[MASKED:aws_access_key]",
			one("aws_access_key")},
		{"aws session key", "id=ASIAY34FZKBOKMUTVV7A;", "id=[MASKED:aws_access_key];",
			one("aws_access_key")},
		{"aws secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"aws_secret_access_key = [MASKED:aws_secret_key]", one("aws_secret_key")},
		{"aws secret json", `"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"`,
			`"SecretAccessKey": "[MASKED:aws_secret_key]"`, one("aws_secret_key")},
		{"github classic", "ghp_" + alnum36, "[MASKED:github_token]", one("github_token")},
		{"github server", "x=ghs_" + alnum36, "x=[MASKED:github_token]", one("github_token")},
		{"github fine grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
			"[MASKED:github_token]", one("github_token")},
		{"slack bot", "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
			"[MASKED:slack_token]", one("slack_token")},
		{"slack app", "xapp-1-A0123456789-0123456789-abcdef", "[MASKED:slack_token]",
			one("slack_token")},
		{"slack webhook",
			"POST https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
			"POST https://hooks.slack.com/[MASKED:slack_token]", one("slack_token")},
		{"stripe live", "sk_live_51Habcdefghijklmnop", "[MASKED:stripe_key]", one("stripe_key")},
		{"stripe restricted", "rk_test_51Habcdefghij", "[MASKED:stripe_key]", one("stripe_key")},
		{"openai", "OPENAI=sk-proj-abcdefghijklmnopqrstuvwxyz012345",
			"OPENAI=[MASKED:openai_key]", one("openai_key")},
		{"anthropic", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz-0123",
			"[MASKED:anthropic_key]", one("anthropic_key")},
		{"google", "key AIzaSyD-abcdefghijklmnopqrstuvwxyz01234",
			"key [MASKED:google_api_key]", one("google_api_key")},
		{"github short", "ghp_short", "ghp_short", nil},
		{"github glued", "xghp_" + alnum36, "xghp_" + alnum36, nil},
		{"github upper", "GHP_" + alnum36, "GHP_" + alnum36, nil},
		{"aws too short", "AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL", nil},
		{"aws too long", "AKIAIOSFODNN7EXAMPLE1", "AKIAIOSFODNN7EXAMPLE1", nil},
		{"word asia", "Trip to Asia in May", "Trip to Asia in May", nil},
		{"task list", "task-abcdefghijklmnopqrstuvwxyz", "task-abcdefghijklmnopqrstuvwxyz", nil},
		{"slack prose", "the xox- prefix", "the xox- prefix", nil},
	})
}

// TestStripeKeys covers the whole kind: secret, restricted and
// publishable keys, live and test, bodies with underscores, and webhook
// secrets; and names and words that only look like them.
func TestStripeKeys(t *testing.T) {
	m := newMasker(t, Options{})
	k := one("stripe_key")
	runMaskCases(t, m, []maskCase{
		{"secret live", "sk_live_51Habcdefghijklmnop", "[MASKED:stripe_key]", k},
		{"secret test, real length",
			"STRIPE_KEY=sk_test_51Mz8QpLw3Rt6YvB2nK9dXc4FhJ7gTsA0eU0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
			"STRIPE_KEY=[MASKED:stripe_key]", k},
		{"secret test with underscores", "use sk_test_demo_not_a_real_key_4eC39HqLyjWDarjtT1zdp7dc now",
			"use [MASKED:stripe_key] now", k},
		{"underscored words only", "sk_test_demo_not_a_real_key_for_docs",
			"[MASKED:stripe_key]", k},
		{"restricted live", "rk_live_51H8x_Qa9LmZ2wT4vB7nK3", "[MASKED:stripe_key]", k},
		{"restricted test", "rk_test_51Habcdefghij", "[MASKED:stripe_key]", k},
		{"publishable live", "pk_live_51Habcdefghijklmnop", "[MASKED:stripe_key]", k},
		{"publishable test in json", `{"key":"pk_test_TYooMQauvdEDq54NiTphI7jx"}`,
			`{"key":"[MASKED:stripe_key]"}`, map[string]int{"stripe_key": 1}},
		{"webhook secret", "whsec_abcdefghijklmnop0123", "[MASKED:stripe_key]", k},
		{"trailing underscore stays", "sk_live_abcdefghij0123_", "[MASKED:stripe_key]_", k},
		{"prefix alone", "the sk_live_ prefix", "the sk_live_ prefix", nil},
		{"too short", "sk_test_abc123", "sk_test_abc123", nil},
		{"short name with underscores", "SELECT * FROM pk_test_users_table",
			"SELECT * FROM pk_test_users_table", nil},
		{"glued to a word", "disk_test_results_for_the_batch_job", "disk_test_results_for_the_batch_job", nil},
		{"upper case prefix", "SK_LIVE_51Habcdefghijklmnop", "SK_LIVE_51Habcdefghijklmnop", nil},
		{"other prefix", "xk_live_51Habcdefghijklmnop", "xk_live_51Habcdefghijklmnop", nil},
	})
}

func TestAssignments(t *testing.T) {
	m := newMasker(t, Options{})
	g := one("generic_api_key")
	runMaskCases(t, m, []maskCase{
		{"key=value", "password=hunter2 next", "password=[MASKED:generic_api_key] next", g},
		{"env", "export DB_PASSWORD='p@ss w0rd'",
			"export DB_PASSWORD='[MASKED:generic_api_key]'", g},
		{"json", `{"api_key": "abc123", "user": "x"}`,
			`{"api_key": "[MASKED:generic_api_key]", "user": "x"}`, g},
		{"json escaped quote", `{"secret":"a\"b"}`, `{"secret":"[MASKED:generic_api_key]"}`, g},
		{"double encoded json", `"{\"password\":\"hunter2\"}"`,
			`"{\"password\":\"[MASKED:generic_api_key]\"}"`, g},
		{"yaml", "client_secret: s3cr3t\n", "client_secret: [MASKED:generic_api_key]\n", g},
		{"header", "X-Api-Key: abcdef123", "X-Api-Key: [MASKED:generic_api_key]", g},
		{"query", "?user=a&access_token=xyz987&b=1",
			"?user=a&access_token=[MASKED:generic_api_key]&b=1", g},
		{"pgpassword", "PGPASSWORD=c4n4ry psql -h 127.0.0.1",
			"PGPASSWORD=[MASKED:generic_api_key] psql -h 127.0.0.1", g},
		{"cli flag", "mysql --password s3cr3t -u root",
			"mysql --password [MASKED:generic_api_key] -u root", g},
		{"sql password", "ALTER ROLE report_reader PASSWORD 'c4n4ry'",
			"ALTER ROLE report_reader PASSWORD '[MASKED:generic_api_key]'", g},
		{"sql doubled quote", "CREATE USER u WITH PASSWORD 'it''s'",
			"CREATE USER u WITH PASSWORD '[MASKED:generic_api_key]'", g},
		{"identified by", "CREATE USER u IDENTIFIED BY 'c4n4ry'",
			"CREATE USER u IDENTIFIED BY '[MASKED:generic_api_key]'", g},
		{"xml", "<password>hunter2</password>",
			"<password>[MASKED:generic_api_key]</password>", g},
		{"go assign", `token := "abc"`, `token := "[MASKED:generic_api_key]"`, g},
		{"token in value", "GITHUB_TOKEN=ghp_" + repeat("a1", 36),
			"GITHUB_TOKEN=[MASKED:github_token]", one("github_token")},
		{"prose", "the password is long", "the password is long", nil},
		{"empty", "password=\n", "password=\n", nil},
		{"null", `"password": null`, `"password": null`, nil},
		{"bool", `"has_secret": true`, `"has_secret": true`, nil},
		{"comparison", "if password == other", "if password == other", nil},
		{"not a credential", "max_tokens=100 token_type=Bearer keyboard=us",
			"max_tokens=100 token_type=Bearer keyboard=us", nil},
		{"env pwd", "PWD=/home/app", "PWD=/home/app", nil},
		{"already masked", "password=[MASKED:secret]", "password=[MASKED:secret]", nil},
	})
}

// TestSecretInProse checks that a bare "secret:" or "token:" in prose
// leaves the next ordinary word alone, while values that look like
// credentials after the same words, and every compound or quoted key,
// are still masked.
func TestSecretInProse(t *testing.T) {
	m := newMasker(t, Options{})
	g := one("generic_api_key")
	runMaskCases(t, m, []maskCase{
		{"secret then a word", "The secret: always rotate keys after a leak.",
			"The secret: always rotate keys after a leak.", nil},
		{"token then a word", "Next token: identifier, then a comma.",
			"Next token: identifier, then a comma.", nil},
		{"capitalised word", "Secret: Patience", "Secret: Patience", nil},
		{"word with a full stop", "my secret: patience.", "my secret: patience.", nil},
		{"secret with digits", "secret: s3cr3tValue", "secret: [MASKED:generic_api_key]", g},
		{"hex token", "token: 9f8e7d6c5b4a3f2e", "token: [MASKED:generic_api_key]", g},
		{"mixed case", "Token: AbCdEfGhIjKl", "Token: [MASKED:generic_api_key]", g},
		{"long passphrase", "secret: correcthorsebatterystaple",
			"secret: [MASKED:generic_api_key]", g},
		{"symbol", "secret: hunter-two", "secret: [MASKED:generic_api_key]", g},
		{"quoted word", `secret: "patience"`, `secret: "[MASKED:generic_api_key]"`, g},
		{"equals sign", "secret=patience", "secret=[MASKED:generic_api_key]", g},
		{"no blank", "secret:patience", "secret:[MASKED:generic_api_key]", g},
		{"compound key", "client_secret: patience", "client_secret: [MASKED:generic_api_key]", g},
		{"json key", `{"token": patience}`, `{"token": [MASKED:generic_api_key]}`, g},
		{"password stays strict", "password: sunshine", "password: [MASKED:generic_api_key]", g},
	})
}

func TestURLPassword(t *testing.T) {
	m := newMasker(t, Options{})
	runMaskCases(t, m, []maskCase{
		{"dsn", "postgres://app:s3cr3t@127.0.0.1:5432/app?sslmode=disable",
			"postgres://app:[MASKED:url_password]@127.0.0.1:5432/app?sslmode=disable",
			one("url_password")},
		{"redis empty user", "redis://:hunter2@cache:6379",
			"redis://:[MASKED:url_password]@cache:6379", one("url_password")},
		{"user only", "ssh://git@evil.example/shop.git", "ssh://g***@e***.example/shop.git",
			one("email")},
		{"port only", "http://127.0.0.1:8080/path@x", "http://127.0.0.1:8080/path@x", nil},
	})
}

func TestOverlapsUsePriority(t *testing.T) {
	m := newMasker(t, Options{})
	jwt := jwtOf(`{"alg":"RS256"}`, `{"sub":"a"}`, "c2ln")
	runMaskCases(t, m, []maskCase{
		{"bearer jwt", "Authorization: Bearer " + jwt,
			"Authorization: Bearer [MASKED:jwt]", one("jwt")},
		{"email in password", "password=alice@example.com",
			"password=[MASKED:generic_api_key]", one("generic_api_key")},
		{"card in iban", "DE89370400440532013000", "[MASKED:iban]", one("iban")},
	})
}

func TestDetectorsOption(t *testing.T) {
	m := newMasker(t, Options{Detectors: []string{"card"}})
	got, _ := m.String("alice@example.com 4111111111111111 password=x")
	if want := "alice@example.com **** **** **** 1111 password=x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	none := newMasker(t, Options{Detectors: []string{}, Secrets: []string{"s3cr3t-value"}})
	got, _ = none.String("alice@example.com s3cr3t-value")
	if want := "alice@example.com [MASKED:secret]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	_, err := New(Options{Detectors: []string{"emails"}})
	if err == nil || !strings.Contains(err.Error(), `unknown detector "emails"`) {
		t.Errorf("unknown detector: err = %v", err)
	}
	if _, err := New(Options{Detectors: []string{"secret"}}); err == nil {
		t.Error("\"secret\" is not a detector, want an error")
	}
	if _, err := New(Options{HashKey: []byte("short")}); err == nil {
		t.Error("5-byte hash key accepted")
	}
}

func TestWithDetectors(t *testing.T) {
	base := newMasker(t, Options{Secrets: []string{"s3cr3t-value"}})
	ssn, err := base.WithDetectors("national_id_us_ssn")
	if err != nil {
		t.Fatal(err)
	}
	in := "SSN 123-45-6789 s3cr3t-value"
	if got, _ := ssn.String(in); got != "SSN ***-**-6789 [MASKED:secret]" {
		t.Errorf("with ssn: %q", got)
	}
	if got, _ := base.String(in); got != "SSN 123-45-6789 [MASKED:secret]" {
		t.Errorf("base changed: %q", got)
	}
	if _, err := base.WithDetectors("nope"); err == nil {
		t.Error("unknown detector accepted")
	}
}

func TestSameInputSameOutput(t *testing.T) {
	m := newMasker(t, Options{})
	in := "alice@example.com 4111111111111111 password=x"
	first, _ := m.String(in)
	for range 3 {
		if got, _ := m.String(in); got != first {
			t.Fatalf("second run gave %q, first %q", got, first)
		}
	}
	other := newMasker(t, Options{})
	if got, _ := other.String(in); got != first {
		t.Fatalf("another masker gave %q, first %q", got, first)
	}
}

func TestEncoded(t *testing.T) {
	m := newMasker(t, Options{})
	email := "alice@northwind.example"
	hexEmail := fmt.Sprintf("%x", email)
	b64 := base64.StdEncoding.EncodeToString
	runMaskCases(t, m, []maskCase{
		{"bytea text output", `\x` + hexEmail, "[MASKED:email]", one("email")},
		{"hex", "c=" + hexEmail + ";", "c=[MASKED:email];", one("email")},
		{"hex upper", strings.ToUpper(hexEmail), "[MASKED:email]", one("email")},
		{"0x hex", "0x" + hexEmail, "[MASKED:email]", one("email")},
		{"base64", `{"b":"` + b64([]byte(email)) + `"}`, `{"b":"[MASKED:email]"}`,
			one("email")},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString([]byte("x " + email + "?")),
			"[MASKED:email]", one("email")},
		{"base64 card", b64([]byte("card 4111 1111 1111 1111")), "[MASKED:card]",
			one("card")},
		{"hex of plain text", fmt.Sprintf("%x", "hello world"), fmt.Sprintf("%x", "hello world"),
			nil},
		{"base64 of plain text", b64([]byte("nothing to see")), b64([]byte("nothing to see")),
			nil},
		{"hash", "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			"sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", nil},
		{"words", "Northwind Traders customer relationship",
			"Northwind Traders customer relationship", nil},
		{"shortest address", b64([]byte("a@b.co")), "[MASKED:email]", one("email")},
		{"too short", b64([]byte("a@b.c")), b64([]byte("a@b.c")), nil},
	})
}
