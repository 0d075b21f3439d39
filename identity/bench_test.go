package identity

import (
	"context"
	"strings"
	"testing"
	"time"
)

func BenchmarkVerify(b *testing.B) {
	ti := startIssuer(b, nil)
	v, err := NewVerifier(context.Background(),
		[]IssuerConfig{{Issuer: ti.Issuer(), Audience: "aud-1"}})
	if err != nil {
		b.Fatalf("NewVerifier: %v", err)
	}
	tok, err := ti.Keypair.SignJWT(ti.claims(time.Now(), "aud-1", "alice"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query_database",` +
		`"arguments":{"sql":"` + strings.Repeat("select 1; ", 1000) + `"}}}`
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := CheckJSON(strings.NewReader(body), 64, 100_000); err != nil {
			b.Fatal(err)
		}
	}
}
