package masking

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestSecretEncodings(t *testing.T) {
	const secret = `Pg-pw:"s3cr3t"/<é>&x`
	m := newMasker(t, Options{Secrets: []string{secret}})
	jsonBody := func(v string) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b[1 : len(b)-1])
	}
	var pct strings.Builder
	for _, c := range []byte(secret) {
		fmt.Fprintf(&pct, "%%%02x", c)
	}
	b := []byte(secret)

	cases := []struct{ name, enc string }{
		{"raw", secret},
		{"ascii upper case", strings.ReplaceAll(strings.ToUpper(secret), "É", "é")},
		{"hex", hex.EncodeToString(b)},
		{"hex upper", strings.ToUpper(hex.EncodeToString(b))},
		{"base64", base64.StdEncoding.EncodeToString(b)},
		{"base64 raw", base64.RawStdEncoding.EncodeToString(b)},
		{"base64 url", base64.URLEncoding.EncodeToString(b)},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(b)},
		{"query escape", url.QueryEscape(secret)},
		{"path escape", url.PathEscape(secret)},
		{"every byte escaped, lower case", pct.String()},
		{"json", jsonBody(secret)},
		{"json ascii only", strings.ReplaceAll(jsonBody(secret), "é", `\u00e9`)},
		{"json escaped slash", strings.ReplaceAll(jsonBody(secret), "/", `\/`)},
		{"json without html escapes", `Pg-pw:\"s3cr3t\"/<é>&x`},
		{"json ascii, slash, no html", `Pg-pw:\"s3cr3t\"\/<\u00E9>&x`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := "before " + tc.enc + " after"
			got, counts := m.String(in)
			if want := "before [MASKED:secret] after"; got != want {
				t.Errorf("String(%q) = %q, want %q", in, got, want)
			}
			if counts["secret"] != 1 {
				t.Errorf("counts = %v, want secret=1", counts)
			}
		})
	}
}

// TestSecretInsideBase64Blob checks every alignment of a secret inside a
// longer base64 text: no part of the masked blob may decode to the secret.
func TestSecretInsideBase64Blob(t *testing.T) {
	const secret = "correct-horse-battery"
	m := newMasker(t, Options{Secrets: []string{secret}})
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for prefix := range 6 {
			for suffix := range 4 {
				name := fmt.Sprintf("prefix %d suffix %d", prefix, suffix)
				t.Run(name, func(t *testing.T) {
					plain := repeat("\x01\xfe\x7f", prefix) + secret + repeat("\x80?", suffix)
					blob := enc.EncodeToString([]byte(plain))
					got, counts := m.String("data:" + blob)
					if counts["secret"] == 0 {
						t.Fatalf("blob %q not masked: %q", blob, got)
					}
					for _, piece := range strings.Split(got, markers[rSecret]) {
						if decodesTo(enc, piece, secret) {
							t.Errorf("piece %q of %q still decodes to the secret", piece, got)
						}
					}
				})
			}
		}
	}
}

// decodesTo reports whether any 4-aligned run of piece decodes to a text
// containing secret.
func decodesTo(enc *base64.Encoding, piece, secret string) bool {
	raw := enc.WithPadding(base64.NoPadding)
	for off := range 4 {
		if off > len(piece) {
			break
		}
		p := strings.TrimRight(piece[off:], "=")
		for len(p) > 0 {
			if b, err := raw.DecodeString(p); err == nil {
				return strings.Contains(string(b), secret)
			}
			p = p[:len(p)-1]
		}
	}
	return false
}

func TestSecretsBeforeDetectors(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{"hunter2pw"}})
	cases := []maskCase{
		{"inside an email", "hunter2pw@example.com", "[MASKED:secret]@example.com",
			one("secret")},
		{"as a password value", "password=hunter2pw", "password=[MASKED:secret]",
			one("secret")},
		{"in a dsn", "postgres://app:hunter2pw@127.0.0.1/app",
			"postgres://app:[MASKED:secret]@127.0.0.1/app", one("secret")},
		{"adjacent matches", "hunter2pwhunter2pw", "[MASKED:secret][MASKED:secret]",
			map[string]int{"secret": 2}},
	}
	runMaskCases(t, m, cases)
}

func TestOverlappingSecretsMerge(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{"abcdef12", "ef12ghij"}})
	got, counts := m.String("x abcdef12ghij y")
	if got != "x [MASKED:secret] y" || counts["secret"] != 1 {
		t.Errorf("got %q %v", got, counts)
	}
}

func TestScrubSecretsOnly(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{"hunter2pw"}})
	in := "alice@example.com password=abc hunter2pw"
	want := "alice@example.com password=abc [MASKED:secret]"
	if got := m.ScrubSecrets(in); got != want {
		t.Errorf("ScrubSecrets = %q, want %q", got, want)
	}
}

func TestShortSecretsSkipped(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{"abc", "", "abcd"}})
	if got := m.SkippedSecrets(); got != 2 {
		t.Errorf("SkippedSecrets = %d, want 2", got)
	}
	if got, _ := m.String("abc abcd"); got != "abc [MASKED:secret]" {
		t.Errorf("got %q", got)
	}
}

func TestWeakSecretsRejected(t *testing.T) {
	for _, secret := range []string{
		"secret", "MASKED", "asked:s", "****", "]abc", "t]abcdef", "abc[", "abc[mas",
		"x[masked:y",
	} {
		t.Run(secret, func(t *testing.T) {
			_, err := New(Options{Secrets: []string{"fine-secret-1", secret}})
			if !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("New accepted %q: err = %v", secret, err)
			}
			if secret != "secret" && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the secret", err)
			}
			if !strings.Contains(err.Error(), "secret 2") {
				t.Errorf("error %q does not say which secret", err)
			}
		})
	}
	for _, secret := range []string{"s3cr3t[]", "a]b[c", "p4ss*word", "Passw0rd*"} {
		if _, err := New(Options{Secrets: []string{secret}}); err != nil {
			t.Errorf("New rejected %q: %v", secret, err)
		}
	}
}

// TestSecretNextToMaskedForm covers a secret that only appears once a
// detector has masked its neighbour: the second scrub must catch it.
func TestSecretNextToMaskedForm(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{" 1111;pw"}})
	got, counts := m.String("card 4111111111111111;pw")
	if want := "card **** **** ****[MASKED:secret]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !sameCounts(counts, map[string]int{"card": 1, "secret": 1}) {
		t.Errorf("counts = %v", counts)
	}
	var out strings.Builder
	w := m.NewWriter(&out)
	w.Write([]byte("card 4111111111111111;"))
	w.Write([]byte("pw"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != got {
		t.Errorf("Writer = %q, String = %q", out.String(), got)
	}
}
