package approvals

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const testAppToken = "xapp-test-token"

// callback decodes a click payload the way the socket client does.
func callback(t *testing.T, user, id, action string) slack.InteractionCallback {
	t.Helper()
	b, err := json.Marshal(clickPayload(user, id, action))
	if err != nil {
		t.Fatal(err)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal(b, &cb); err != nil {
		t.Fatal(err)
	}
	return cb
}

func TestSocketModeEventDecides(t *testing.T) {
	tests := []struct {
		name      string
		user      string
		action    string
		wantState State
		wantReply string
	}{
		{name: "approver approves", user: "U0CAROL", action: actionApprove,
			wantState: StateApproved},
		{name: "approver denies", user: "U0DAVE", action: actionDeny,
			wantState: StateDenied},
		{name: "not an approver", user: "U0FRANK", action: actionApprove,
			wantState: StatePending, wantReply: msgNotApprover},
		{name: "requester", user: "U0ALICE", action: actionApprove,
			wantState: StatePending, wantReply: msgNotApprover},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{slack: true})
			opened, _ := openInSlack(t, e, deleteRequest())
			m, err := NewSocketMode(e.svc, e.notifier, testAppToken)
			if err != nil {
				t.Fatal(err)
			}

			m.handle(context.Background(), socketmode.Event{
				Type:    socketmode.EventTypeInteractive,
				Data:    callback(t, tt.user, opened.ID, tt.action),
				Request: &socketmode.Request{EnvelopeID: "env-1"},
			})
			m.in.wg.Wait()

			if got := e.get(opened.ID); got.State != tt.wantState {
				t.Fatalf("state = %s, want %s", got.State, tt.wantState)
			}
			ephs := e.slack.Calls("chat.postEphemeral")
			if tt.wantReply == "" && len(ephs) != 0 {
				t.Fatalf("unexpected reply %q", ephs[0].Form.Get("text"))
			}
			if tt.wantReply != "" && (len(ephs) != 1 || ephs[0].Form.Get("text") != tt.wantReply) {
				t.Fatalf("replies = %v, want %q", ephs, tt.wantReply)
			}
		})
	}
}

func TestSocketModeIgnoresOtherEvents(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())
	m, err := NewSocketMode(e.svc, e.notifier, testAppToken)
	if err != nil {
		t.Fatal(err)
	}
	other := callback(t, "U0CAROL", opened.ID, actionApprove)
	other.ActionCallback.BlockActions[0].BlockID = "approval:apr-someotherid"
	for _, evt := range []socketmode.Event{
		{Type: socketmode.EventTypeHello},
		{Type: socketmode.EventTypeInteractive, Data: "not a callback"},
		{Type: socketmode.EventTypeInteractive, Data: other},
	} {
		m.handle(context.Background(), evt)
	}
	m.in.wg.Wait()
	if got := e.get(opened.ID); got.State != StatePending {
		t.Fatalf("state = %s, want pending", got.State)
	}
}

// TestSocketModeOverWebSocket runs the whole Socket Mode path against a
// local fake: apps.connections.open hands out a loopback WebSocket URL, the
// fake sends hello and a button click, and expects the acknowledgement.
func TestSocketModeOverWebSocket(t *testing.T) {
	e := newEnv(t, envConfig{slack: true})
	opened, _ := openInSlack(t, e, deleteRequest())
	wsURL := "ws" + strings.TrimPrefix(e.slack.srv.URL, "http") + "/ws"
	acks := make(chan string, 4)
	payload, err := json.Marshal(clickPayload("U0CAROL", opened.ID, actionApprove))
	if err != nil {
		t.Fatal(err)
	}

	e.slack.setOnCall(func(w http.ResponseWriter, r *http.Request, method string) bool {
		switch method {
		case "apps.connections.open":
			w.Header().Set("Content-Type", "application/json")
			if r.Header.Get("Authorization") != "Bearer "+testAppToken {
				_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
				return true
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": wsURL})
			return true
		case "ws":
			serveSocket(t, w, r, payload, acks)
			return true
		}
		return false
	})

	m, err := NewSocketMode(e.svc, e.notifier, testAppToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	select {
	case id := <-acks:
		if id != "env-1" {
			t.Fatalf("acknowledged %q, want env-1", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement over the socket")
	}
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer waitCancel()
	got, err := e.svc.Wait(waitCtx, opened.ID, nil)
	if err != nil || got.State != StateApproved {
		t.Fatalf("Wait = %v, %v; want approved", got, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// serveSocket plays Slack's side of one Socket Mode connection.
func serveSocket(t *testing.T, w http.ResponseWriter, r *http.Request, payload []byte, acks chan<- string) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		t.Errorf("upgrade: %v", err)
		return
	}
	defer conn.Close()

	msgs := []any{
		map[string]any{"type": "hello", "num_connections": 1},
		map[string]any{"type": "interactive", "envelope_id": "env-1",
			"payload": json.RawMessage(payload), "accepts_response_payload": false},
	}
	for _, m := range msgs {
		if err := conn.WriteJSON(m); err != nil {
			t.Errorf("write: %v", err)
			return
		}
	}
	for {
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if err := conn.ReadJSON(&ack); err != nil {
			return // the client went away
		}
		acks <- ack.EnvelopeID
	}
}
