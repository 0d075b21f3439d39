package masking

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

const corpusSecret = "Tr0ub4dor&3-horse"

// snippets are findings, near misses and plain text that the corpus is
// built from.
func snippets() []string {
	jwt := jwtOf(`{"alg":"HS256"}`, `{"sub":"42","name":"x"}`, "c2lnbmF0dXJlLXZhbHVl")
	return []string{
		"alice@northwind.example", "mailto:bob@example.co.uk", "foo@bar",
		"4242 4242 4242 4242", "3714-496353-98431", "4111111111111111",
		"1700000000000", "+49 151 2345 6789", "123e4567-e89b-12d3-a456-426614174000",
		"DE89 3704 0044 0532 0130 00", "GB29NWBK60161331926819",
		"Authorization: Bearer " + jwt, "token " + jwt,
		"ghp_" + repeat("aB3", 36), "xoxb-1234567890-abcdefghijkl",
		"sk_live_abcdefghijkl", "sk-proj-abcdefghijklmnopqrstuvwx",
		"AKIAIOSFODNN7EXAMPLE", "AIzaSyD-abcdefghijklmnopqrstuvwxyz01234",
		"password=hunter2", `"api_key": "abc123"`, "postgres://u:pw@127.0.0.1/db",
		"PGPASSWORD=x PGUSER=y", "the password is long",
		corpusSecret, strings.ToUpper(corpusSecret),
		base64.StdEncoding.EncodeToString([]byte(corpusSecret)),
		base64.StdEncoding.EncodeToString([]byte("xy" + corpusSecret + "z")),
		fmt.Sprintf("%x", corpusSecret),
		"Northwind Traders", "order 12345 shipped 2024-01-15", "ok", "\t", "é",
	}
}

// corpus builds a text of about size bytes from snippets, with long lines,
// private key blocks and a lone "-----BEGIN" here and there.
func corpus(rng *rand.Rand, size int, openKeyAtEnd bool) string {
	snips := snippets()
	var b strings.Builder
	for b.Len() < size {
		switch r := rng.IntN(100); {
		case r < 2:
			b.WriteString("-----BEGIN RSA PRIVATE KEY-----\n")
			for range rng.IntN(2000) {
				b.WriteString("MIIEowIBAAKCAQEA7abc+/\n")
			}
			b.WriteString("-----END RSA PRIVATE KEY-----")
		case r < 3:
			b.WriteString("-----BEGIN CERTIFICATE-----")
		case r < 5:
			// A long line without newlines.
			for range rng.IntN(8000) {
				b.WriteString(snips[rng.IntN(len(snips))])
				b.WriteByte(" ,;\"'"[rng.IntN(5)])
			}
		default:
			b.WriteString(snips[rng.IntN(len(snips))])
		}
		b.WriteString([]string{"\n", " ", "\n", ", ", ""}[rng.IntN(5)])
	}
	if openKeyAtEnd {
		b.WriteString("\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nno end")
	}
	return b.String()
}

// writeChunks writes s to a new Writer in chunks chosen by next.
func writeChunks(t *testing.T, m *Masker, s string, next func() int) (string, Counts) {
	t.Helper()
	var out bytes.Buffer
	w := m.NewWriter(&out)
	for len(s) > 0 {
		n := min(max(next(), 1), len(s))
		if _, err := w.Write([]byte(s[:n])); err != nil {
			t.Fatalf("Write: %v", err)
		}
		s = s[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String(), w.Counts()
}

func TestWriterMatchesString(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{corpusSecret}})
	rng := rand.New(rand.NewPCG(1, 2))
	for i, size := range []int{300, 5000, 200 << 10, 600 << 10} {
		for _, open := range []bool{false, true} {
			text := corpus(rng, size, open)
			want, wantCounts := m.String(text)
			chunkings := map[string]func() int{
				"one write":    func() int { return len(text) },
				"random small": func() int { return rng.IntN(64) },
				"random large": func() int { return rng.IntN(100 << 10) },
				"odd":          func() int { return 4093 },
			}
			if size <= 5000 {
				chunkings["bytes"] = func() int { return 1 }
			}
			for name, next := range chunkings {
				t.Run(fmt.Sprintf("%d/open=%v/%s", i, open, name), func(t *testing.T) {
					got, counts := writeChunks(t, m, text, next)
					if got != want {
						t.Fatalf("Writer and String differ at byte %d:\n writer %q\n string %q",
							diffAt(got, want), around(got, diffAt(got, want)),
							around(want, diffAt(got, want)))
					}
					if !sameCounts(counts, wantCounts) {
						t.Errorf("counts %v, String counted %v", counts, wantCounts)
					}
				})
			}
		}
	}
}

func diffAt(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func around(s string, i int) string {
	return s[max(0, i-60):min(len(s), i+60)]
}

func TestWriterEverySplit(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{corpusSecret}})
	text := strings.Join(snippets(), "\n") +
		"\n-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\ntail"
	want, _ := m.String(text)
	for cut := range len(text) {
		var out bytes.Buffer
		w := m.NewWriter(&out)
		_, err1 := w.Write([]byte(text[:cut]))
		_, err2 := w.Write([]byte(text[cut:]))
		if err := errors.Join(err1, err2, w.Close()); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("split at %d (%q|%q): got %q", cut, around(text, cut)[:60],
				around(text, cut)[60:], around(out.String(), diffAt(out.String(), want)))
		}
	}
}

func TestWriterSecretSplitAcrossWrites(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{corpusSecret}})
	for _, enc := range []string{corpusSecret,
		base64.StdEncoding.EncodeToString([]byte(corpusSecret))} {
		for cut := 1; cut < len(enc); cut++ {
			var out bytes.Buffer
			w := m.NewWriter(&out)
			w.Write([]byte("pw " + enc[:cut]))
			if strings.Contains(out.String(), enc[:cut]) {
				t.Fatalf("first half %q written before the rest arrived", enc[:cut])
			}
			w.Write([]byte(enc[cut:] + " end"))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != "pw [MASKED:secret] end" {
				t.Fatalf("cut %d of %q: got %q", cut, enc, got)
			}
		}
	}
}

func TestWriterLargeKeyBlock(t *testing.T) {
	m := newMasker(t, Options{})
	body := strings.Repeat("MIIEowIBAAKCAQEA7abcdefghijklmnopqrstuvwxyz012345678\n", 20000)
	cases := []struct {
		name, in, want string
	}{
		{"with end", "before\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n" + body +
			"-----END PGP PRIVATE KEY BLOCK-----\nafter carol@example.com\n",
			"before\n[MASKED:private_key]\nafter c***@e***.com\n"},
		{"without end", "before\n-----BEGIN PRIVATE KEY-----\n" + body + "alice@example.com",
			"before\n[MASKED:private_key]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := m.String(tc.in); got != tc.want {
				t.Fatalf("String = %q", got)
			}
			var out bytes.Buffer
			w := m.NewWriter(&out)
			for in := tc.in; len(in) > 0; {
				n := min(len(in), 1000)
				w.Write([]byte(in[:n]))
				in = in[n:]
				if len(w.head.(*detectStage).buf) > (batch+1)*window {
					t.Fatal("key block held in memory")
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("Writer = %q", around(out.String(), 0))
			}
		})
	}
}

// countingWriter counts lines and masked cards as they arrive.
type countingWriter struct {
	lines int
	cards int
	tail  []byte
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte("\n"))
	buf := append(c.tail, p...)
	c.cards += bytes.Count(buf, []byte("**** **** **** 1111"))
	keep := min(len(buf), 18) // shorter than the form, so none is counted twice
	c.tail = append(c.tail[:0], buf[len(buf)-keep:]...)
	return len(p), nil
}

func TestWriterBoundedMemory(t *testing.T) {
	total := 50 << 20
	if testing.Short() {
		total = 5 << 20
	}
	m := newMasker(t, Options{Secrets: []string{corpusSecret}})
	line := func(i int) string {
		return fmt.Sprintf("row %07d: Jane Roe, jane%d@example.com, 4111 1111 1111 1111, "+
			"order shipped on 2024-01-15 with no issues at all\n", i, i)
	}
	chunk := make([]byte, 0, 64<<10)
	sink := &countingWriter{}
	w := m.NewWriter(sink)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	written, lines := 0, 0
	for chunks := 0; written < total; chunks++ {
		chunk = chunk[:0]
		for len(chunk) < 60<<10 {
			chunk = append(chunk, line(lines)...)
			lines++
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		written += len(chunk)
		if chunks%16 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if lag := lines - sink.lines; lag*len(line(0)) > (batch+2)*window {
		t.Errorf("%d lines held back before Close; the writer does not stream", lag)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if grew := peak - base; grew > 16<<20 {
		t.Errorf("heap grew by %d MiB while streaming %d MiB", grew>>20, total>>20)
	}
	if sink.cards != lines {
		t.Errorf("%d cards masked, want %d", sink.cards, lines)
	}
	if c := w.Counts(); c["email"] != lines || c["card"] != lines {
		t.Errorf("counts = %v, want %d emails and cards", c, lines)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterErrors(t *testing.T) {
	m := newMasker(t, Options{})
	boom := errors.New("disk full")
	w := m.NewWriter(failingWriter{boom})
	big := bytes.Repeat([]byte("x\n"), 3*window)
	if _, err := w.Write(big); !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want %v", err, boom)
	}
	if _, err := w.Write([]byte("more")); !errors.Is(err, boom) {
		t.Errorf("later Write error = %v, want the first error", err)
	}

	ok := m.NewWriter(io.Discard)
	if err := ok.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ok.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ok.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newMasker(t, Options{Secrets: []string{corpusSecret}})
	inputs := snippets()
	want := make([]string, len(inputs))
	for i, in := range inputs {
		want[i], _ = m.String(in)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for n := range 200 {
				i := (g + n) % len(inputs)
				if got, _ := m.String(inputs[i]); got != want[i] {
					errs <- fmt.Errorf("goroutine %d: %q masked to %q, want %q",
						g, inputs[i], got, want[i])
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
