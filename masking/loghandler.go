package masking

import (
	"context"
	"encoding/json"
	"log/slog"
)

// NewLogHandler wraps inner so that every record it writes has server-held
// secrets and credentials (tokens, keys, passwords, bearer and private key
// material; not emails or card numbers, which operators may need) removed
// from its message and attribute values, through groups, LogValuers and
// error values. The credential detectors apply whatever the Masker's
// Options.Detectors says.
func NewLogHandler(inner slog.Handler, m *Masker) slog.Handler {
	return &logHandler{inner: inner, m: m}
}

type logHandler struct {
	inner slog.Handler
	m     *Masker
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &logHandler{inner: h.inner.WithAttrs(clean), m: h.m}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(h.scrub(name)), m: h.m}
}

func (h *logHandler) scrub(s string) string {
	var t tally
	out, _ := h.m.maskString(s, h.m.logSet, &t)
	return out
}

// attr scrubs one attribute. A value is rewritten as a string only when
// its text held something to remove; other values keep their kind.
func (h *logHandler) attr(a slog.Attr) slog.Attr {
	a.Key = h.scrub(a.Key)
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		group := v.Group()
		clean := make([]slog.Attr, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		a.Value = slog.GroupValue(clean...)
		return a
	}
	text, alt := v.String(), ""
	if v.Kind() == slog.KindAny {
		switch x := v.Any().(type) {
		case []byte:
			text = string(x)
		case error:
		default:
			// A handler may print the value as JSON, which can show
			// fields its String form hides.
			if raw, err := json.Marshal(x); err == nil {
				alt = string(raw)
			}
		}
	}
	var t tally
	clean, changed := h.m.maskString(text, h.m.logSet, &t)
	if !changed && alt != "" {
		_, changed = h.m.maskString(alt, h.m.logSet, &t)
	}
	if changed {
		v = slog.StringValue(clean)
	}
	a.Value = v
	return a
}
