package masking

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchRows builds a realistic query result: 10,000 rows of name, email,
// card, free text, number and timestamp.
func benchRows() ([]any, int64) {
	notes := []string{
		"Customer called about order 48213 on 2024-01-15; card declined twice.",
		"Prefers email contact. VIP since 2019, see ticket #5521 for history.",
		"Shipped via DHL, tracking 1Z999AA10123456784, signed by front desk.",
		"No issues reported.",
	}
	cards := []string{"4111 1111 1111 1111", "5555555555554444", "3714-496353-98431",
		"4111 1111 1111 1112"}
	rows := make([]any, 10000)
	var size int64
	for i := range rows {
		row := []any{
			fmt.Sprintf("Jane Roe %d", i),
			fmt.Sprintf("jane.roe%d@northwind.example", i),
			cards[i%len(cards)],
			notes[i%len(notes)],
			int64(100000 + i*37),
			fmt.Sprintf("2024-01-%02dT10:%02d:00Z", 1+i%28, i%60),
		}
		for _, v := range row {
			if s, ok := v.(string); ok {
				size += int64(len(s))
			} else {
				size += 8
			}
		}
		rows[i] = row
	}
	return rows, size
}

// BenchmarkMaskRows masks a 10,000 x 6 result; one op is the whole result.
func BenchmarkMaskRows(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"defaults", Options{}},
		{"with secrets", Options{Secrets: []string{"pg-password-123", corpusSecret,
			"AKIAEXAMPLESECRETKEY", "sk_live_server_key_0001"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := newMasker(b, bc.opts)
			rows, size := benchRows()
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				m.Value(rows)
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	m := newMasker(b, Options{Secrets: []string{"pg-password-123"}})
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 200)
	for _, bc := range []struct{ name, in string }{
		{"clean short", "Northwind Traders"},
		{"clean long", long},
		{"email", "jane.roe@northwind.example"},
		{"card", "4111 1111 1111 1111"},
		{"secret", "dsn password pg-password-123 here"},
		{"mixed long", long + " bob@example.com password=x 4242424242424242 " + long},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				m.String(bc.in)
			}
		})
	}
}

func BenchmarkWriter(b *testing.B) {
	m := newMasker(b, Options{Secrets: []string{"pg-password-123"}})
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		fmt.Fprintf(&sb, "row %d: jane%d@example.com paid with 4111 1111 1111 1111; ok\n", i, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w := m.NewWriter(io.Discard)
		for p := data; len(p) > 0; {
			n := min(len(p), 16<<10)
			w.Write(p[:n])
			p = p[n:]
		}
		w.Close()
	}
}
