package masking

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const logSecret = "dsn-pa55word-77"

// secretValue is a LogValuer that resolves to the secret.
type secretValue struct{}

func (secretValue) LogValue() slog.Value { return slog.StringValue("pw " + logSecret) }

// jsonOnly hides its field from fmt but not from JSON.
type jsonOnly struct {
	Token string `json:"token"`
}

func (jsonOnly) String() string { return "jsonOnly{...}" }

func newTestLogger(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	m := newMasker(t, Options{Secrets: []string{logSecret}})
	var buf bytes.Buffer
	inner := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(NewLogHandler(inner, m)), &buf
}

func TestLogHandlerScrubs(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(logSecret))
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		want []string // must appear
	}{
		{"message", func(l *slog.Logger) { l.Info("connecting with " + logSecret) },
			[]string{`"msg":"connecting with [MASKED:secret]"`}},
		{"string attr", func(l *slog.Logger) {
			l.Info("x", "dsn", "postgres://u:"+logSecret+"@h/db")
		},
			[]string{`"dsn":"postgres://u:[MASKED:secret]@h/db"`}},
		{"encoded attr", func(l *slog.Logger) { l.Info("x", "basic", b64) },
			[]string{`"basic":"[MASKED:secret]"`}},
		{"error attr", func(l *slog.Logger) {
			l.Error("dial failed", "error", fmt.Errorf("connect: %w",
				errors.New("password "+logSecret+" rejected")))
		}, []string{`"error":"connect: password [MASKED:secret] rejected"`}},
		{"nested groups", func(l *slog.Logger) {
			l.Info("x", slog.Group("db", slog.Group("auth", slog.String("pw", logSecret))))
		}, []string{`"db":{"auth":{"pw":"[MASKED:secret]"}}`}},
		{"with attrs", func(l *slog.Logger) { l.With("dsn", logSecret).Info("x") },
			[]string{`"dsn":"[MASKED:secret]"`}},
		{"with group", func(l *slog.Logger) { l.WithGroup("g").Info("x", "k", logSecret) },
			[]string{`"g":{"k":"[MASKED:secret]"}`}},
		{"log valuer", func(l *slog.Logger) { l.Info("x", "v", secretValue{}) },
			[]string{`"v":"pw [MASKED:secret]"`}},
		{"bytes", func(l *slog.Logger) { l.Info("x", "raw", []byte(logSecret)) },
			[]string{`"raw":"[MASKED:secret]"`}},
		{"json-only field", func(l *slog.Logger) { l.Info("x", "v", jsonOnly{logSecret}) },
			[]string{`"v":"jsonOnly{...}"`}},
		{"tokens too", func(l *slog.Logger) {
			l.Info("request", "header", "Authorization: Bearer abcdef0123456789",
				"cmd", "PGPASSWORD=c4n4ry psql")
		}, []string{`"header":"Authorization: Bearer [MASKED:bearer]"`,
			`"cmd":"PGPASSWORD=[MASKED:generic_api_key] psql"`}},
		{"emails kept for operators", func(l *slog.Logger) {
			l.Info("approval", "approver", "ops@example.com", "n", 3)
		}, []string{`"approver":"ops@example.com"`, `"n":3`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, buf := newTestLogger(t)
			tc.log(l)
			out := buf.String()
			if strings.Contains(out, logSecret) || strings.Contains(out, b64) {
				t.Errorf("secret logged: %s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("log %s\nlacks %s", out, w)
				}
			}
		})
	}
}

func TestLogHandlerLevels(t *testing.T) {
	m := newMasker(t, Options{})
	var buf bytes.Buffer
	inner := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	l := slog.New(NewLogHandler(inner, m))
	l.Info("hidden")
	l.Warn("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("level filtering lost: %q", out)
	}
}
