package guard

import (
	"context"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-guard/mcp-guard/identity"
	"github.com/mcp-guard/mcp-guard/recorder"
)

// Transports a call can arrive on.
const (
	TransportStdio = "stdio"
	TransportHTTP  = "http"
)

type transportKey struct{}

// WithTransport marks ctx with the transport a request arrived on.
func WithTransport(ctx context.Context, transport string) context.Context {
	return context.WithValue(ctx, transportKey{}, transport)
}

// SessionIdle is how long a caller and client may stay silent over HTTP
// before their next call opens a new transcript, when the protocol itself
// has no session.
const SessionIdle = 30 * time.Minute

// sessions groups calls into transcripts. On stdio the process is the
// session. Over HTTP a legacy (2025-11-25) client's protocol session is
// the session; a client on the stateless protocol is grouped by caller and
// client within an idle window.
type sessions struct {
	g     *Guard
	mu    sync.Mutex
	stdio string
	open  map[string]*session // by grouping key
}

type session struct {
	id       string
	lastSeen time.Time
}

// SessionStart is the body of a session_start record.
type SessionStart struct {
	SessionID     string          `json:"session_id"`
	Transport     string          `json:"transport"`
	ClientName    string          `json:"client_name"`
	ClientVersion string          `json:"client_version"`
	Protocol      string          `json:"protocol"`
	Caller        identity.Caller `json:"caller"`
}

func newSessions(g *Guard) *sessions {
	return &sessions{g: g, open: map[string]*session{}}
}

func (s *sessions) forCall(ctx context.Context, caller identity.Caller) string {
	transport, _ := ctx.Value(transportKey{}).(string)
	if transport == "" {
		transport = TransportStdio
	}
	name, version := clientInfo(ctx)
	key := transport + "\x00" + caller.Issuer + "\x00" + caller.Subject + "\x00" + name + "\x00" + version
	if transport == TransportHTTP && !server.IsModernRequest(ctx) {
		if cs := server.ClientSessionFromContext(ctx); cs != nil && cs.SessionID() != "" {
			key = "legacy\x00" + cs.SessionID() + "\x00" + caller.Issuer + "\x00" + caller.Subject
		}
	}
	now := s.g.now()
	s.mu.Lock()
	sess, ok := s.open[key]
	fresh := !ok || (transport == TransportHTTP && now.Sub(sess.lastSeen) > SessionIdle)
	if fresh {
		sess = &session{id: newID()}
		s.open[key] = sess
	}
	sess.lastSeen = now
	s.mu.Unlock()
	if fresh {
		body := SessionStart{
			SessionID: sess.id, Transport: transport, ClientName: name,
			ClientVersion: version, Protocol: server.RequestProtocolVersion(ctx), Caller: caller,
		}
		if err := s.g.rec.Append(ctx, recorder.KindSessionStart, sess.id, "", body); err != nil {
			s.g.logger.Error("recording a session start failed", "session_id", sess.id, "error", err)
		}
	}
	return sess.id
}

// closeAll records the end of every open session.
func (s *sessions) closeAll(ctx context.Context) {
	s.mu.Lock()
	open := s.open
	s.open = map[string]*session{}
	s.mu.Unlock()
	for _, sess := range open {
		_ = s.g.rec.Append(ctx, recorder.KindSessionEnd, sess.id, "", map[string]any{"session_id": sess.id})
	}
}

// Close records the end of the open sessions.
func (g *Guard) Close(ctx context.Context) { g.sessions.closeAll(ctx) }

func clientInfo(ctx context.Context) (name, version string) {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientInfo != nil {
		return info.ClientInfo.Name, info.ClientInfo.Version
	}
	if cs, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		ci := cs.GetClientInfo()
		return ci.Name, ci.Version
	}
	return "", ""
}
