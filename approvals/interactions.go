package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

const (
	// maxCallbackBody caps the body of an interaction callback. Slack's
	// block_actions payloads for our message are a few KiB.
	maxCallbackBody = 64 << 10
	// decideTimeout bounds the work done for one click after the reply.
	decideTimeout = 30 * time.Second

	// rejectBody is the whole answer to a request that fails verification.
	// It is fixed: the verifier's own error text must never reach the
	// sender or the log.
	rejectBody = "invalid request signature\n"

	msgNotApprover = "You are not an approver for this request."
)

// interactions turns a Slack button click into a decision. The HTTP
// callback and Socket Mode share it.
type interactions struct {
	svc   *Service
	slack *SlackNotifier
	log   *slog.Logger
	// wg counts clicks still being processed.
	wg sync.WaitGroup
}

// click is the part of a callback that matters to us.
type click struct {
	id      string
	approve bool
	user    string
	channel string
}

// parseClick finds our Approve or Deny button in a block_actions callback.
func parseClick(cb slack.InteractionCallback) (click, bool) {
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID == "" {
		return click{}, false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil || a.Value == "" || a.BlockID != blockPrefix+a.Value {
			continue
		}
		if a.ActionID != actionApprove && a.ActionID != actionDeny {
			continue
		}
		ch := cb.Channel.ID
		if ch == "" {
			ch = cb.Container.ChannelID
		}
		return click{id: a.Value, approve: a.ActionID == actionApprove,
			user: cb.User.ID, channel: ch}, true
	}
	return click{}, false
}

// dispatch processes a click in the background, so that Slack gets its
// acknowledgement within its three seconds.
func (in *interactions) dispatch(cb slack.InteractionCallback) {
	c, ok := parseClick(cb)
	if !ok {
		in.log.Debug("slack interaction ignored", keyType, string(cb.Type))
		return
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), decideTimeout)
		defer cancel()
		in.decide(ctx, c)
	}()
}

// decide maps the Slack user to a person, records the decision and tells
// the user privately when it was refused.
func (in *interactions) decide(ctx context.Context, c click) {
	who, err := in.person(ctx, c.user)
	if err != nil {
		in.log.Warn("slack user not identified", keyRequest, c.id,
			keySlackUser, c.user, keyError, err)
		in.reply(ctx, c, "Your Slack identity could not be checked, so "+
			"nothing was recorded. Try again or use the CLI.")
		return
	}

	r, err := in.svc.Decide(ctx, c.id, who, c.approve, ViaSlack)
	switch {
	case err == nil && r.State == StatePending:
		in.reply(ctx, c, "Your approval is recorded; more approvals are needed.")
	case err == nil:
	case errors.Is(err, ErrNotApprover), errors.Is(err, ErrSelfApproval):
		in.reply(ctx, c, msgNotApprover)
	case errors.Is(err, ErrAlreadyDecided):
		in.reply(ctx, c, "You have already decided this request.")
	case errors.Is(err, ErrExpired):
		in.reply(ctx, c, "This request has expired.")
	case errors.Is(err, ErrNotPending):
		in.reply(ctx, c, "This request is no longer pending.")
	case errors.Is(err, ErrNotFound):
		in.reply(ctx, c, "This approval request does not exist.")
	default:
		in.log.Error("record slack decision", keyRequest, c.id, keyError, err)
		in.reply(ctx, c, "Your decision could not be recorded. Try again.")
	}
}

// person is the directory entry of a Slack user or, failing that, a person
// with the email Slack holds for them.
func (in *interactions) person(ctx context.Context, user string) (Person, error) {
	if p, ok := in.svc.lookup(user, ""); ok {
		return p, nil
	}
	email, err := in.slack.userEmail(ctx, user)
	if err != nil {
		return Person{}, err
	}
	return Person{Email: email, SlackUser: user}, nil
}

// reply posts an ephemeral message to the user who clicked.
func (in *interactions) reply(ctx context.Context, c click, text string) {
	if c.channel == "" {
		return
	}
	if err := in.slack.ephemeral(ctx, c.channel, c.user, text); err != nil {
		in.log.Error("reply to slack user", keyRequest, c.id, keyError, err)
	}
}

// CallbackHandler serves Slack's interactivity requests
// (/slack/interactions). It verifies Slack's signature over the raw body
// before it parses anything, answers 401 with a fixed body on any failure,
// and answers 200 at once otherwise, deciding in the background.
type CallbackHandler struct {
	secret string
	in     *interactions
}

// NewCallbackHandler returns the handler for Slack's interactivity request
// URL. It refuses an empty signing secret.
func NewCallbackHandler(svc *Service, n *SlackNotifier,
	signingSecret string) (*CallbackHandler, error) {
	if signingSecret == "" {
		return nil, errors.New("approvals: slack signing secret is required")
	}
	if svc == nil || n == nil {
		return nil, errors.New("approvals: callback handler needs a service and a notifier")
	}
	in := &interactions{svc: svc, slack: n, log: svc.log}
	return &CallbackHandler{secret: signingSecret, in: in}, nil
}

// ServeHTTP verifies and accepts one interaction callback.
func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable",
			http.StatusRequestEntityTooLarge)
		return
	}

	if reason := verify(r.Header, body, h.secret); reason != "" {
		h.in.log.Warn("slack request rejected", keyReason, reason,
			keyRemote, r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, rejectBody)
		return
	}

	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "malformed payload", http.StatusBadRequest)
		return
	}
	// Dispatch before answering, so that Close, called once the answer is
	// read, also waits for this click.
	h.in.dispatch(cb)
	w.WriteHeader(http.StatusOK)
}

// Close waits for clicks still being processed.
func (h *CallbackHandler) Close() {
	h.in.wg.Wait()
}

// verify checks Slack's v0 signature and its five-minute timestamp window.
// It returns a fixed reason on failure, never the verifier's error text,
// which can carry signature material.
func verify(header http.Header, body []byte, secret string) string {
	sv, err := slack.NewSecretsVerifier(header, secret)
	switch {
	case errors.Is(err, slack.ErrMissingHeaders):
		return "missing_headers"
	case errors.Is(err, slack.ErrExpiredTimestamp):
		return "stale_timestamp"
	case err != nil:
		return "malformed_signature"
	}
	if _, err := sv.Write(body); err != nil {
		return "malformed_signature"
	}
	if sv.Ensure() != nil {
		return "bad_signature"
	}
	return ""
}
