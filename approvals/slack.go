package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/slack-go/slack"
)

// Slack limits and the names our messages use.
const (
	// maxTextCost is Slack's limit on one text object, 3000 characters. We
	// count a character as Slack might at worst: UTF-16 units, with <, > and
	// & counted at their escaped length.
	maxTextCost = 3000
	// maxBlocks is the most blocks one Slack message can carry.
	maxBlocks = 50

	actionApprove = "approve"
	actionDeny    = "deny"
	blockPrefix   = "approval:"

	// slackTimeout bounds every Slack API call.
	slackTimeout = 10 * time.Second
	// emailTTL is how long a Slack user's email is cached.
	emailTTL = 10 * time.Minute
	// drawnTTL is how long a message's drawing progress is remembered.
	// Redraws of one change race for milliseconds, not hours.
	drawnTTL = time.Hour
)

// SlackOptions configures a SlackNotifier.
type SlackOptions struct {
	// BotToken is the bot's xoxb- token. Required.
	BotToken string
	// APIURL is the Web API base URL and must end with "/"; empty means
	// Slack itself. Tests point it at a local fake.
	APIURL string
	// Channel is where requests without their own channel are posted.
	Channel string
	// HTTPClient makes the API calls; nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// SlackNotifier posts approval requests to Slack as Block Kit messages and
// redraws them after decisions. Everything a requester controls (the
// command, target, reasons) is sent as plain_text, never as mrkdwn, so it
// cannot render as a link, a mention or formatting.
type SlackNotifier struct {
	api     *slack.Client
	token   string
	apiURL  string
	client  *http.Client
	channel string
	log     *slog.Logger

	// mu guards emails.
	mu     sync.Mutex
	emails map[string]cachedEmail

	// drawMu guards drawn: per message, how far its updates have got.
	drawMu sync.Mutex
	drawn  map[Message]*drawing
}

// drawing orders the updates of one message. Redraws run concurrently (a
// decision's and the claim that follows it), and Slack shows whichever
// update arrives last, so an update older than one already sent is
// dropped.
type drawing struct {
	// mu is held across the update call.
	mu   sync.Mutex
	last progress
	at   time.Time
}

// progress ranks a request's state for drawing: a later state, or more
// decisions in the same state, is newer.
type progress struct {
	rank      int
	decisions int
}

func progressOf(r *Request) progress {
	rank := 0
	switch r.State {
	case StateApproved:
		rank = 1
	case StateDenied, StateExpired, StateExecuted:
		rank = 2
	}
	return progress{rank: rank, decisions: len(r.Decisions)}
}

func (p progress) before(q progress) bool {
	return p.rank < q.rank || (p.rank == q.rank && p.decisions < q.decisions)
}

type cachedEmail struct {
	email string
	at    time.Time
}

var _ Notifier = (*SlackNotifier)(nil)

// NewSlackNotifier checks o and returns a notifier.
func NewSlackNotifier(o SlackOptions) (*SlackNotifier, error) {
	if o.BotToken == "" {
		return nil, errors.New("approvals: slack bot token is required")
	}
	if o.APIURL != "" {
		u, err := url.Parse(o.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("approvals: slack api_url is not an http(s) URL")
		}
		if !strings.HasSuffix(o.APIURL, "/") {
			return nil, errors.New(`approvals: slack api_url must end with "/"`)
		}
	}

	n := &SlackNotifier{
		token:   o.BotToken,
		apiURL:  o.APIURL,
		client:  o.HTTPClient,
		channel: o.Channel,
		log:     o.Logger,
		emails:  map[string]cachedEmail{},
		drawn:   map[Message]*drawing{},
	}
	if n.client == nil {
		n.client = &http.Client{Timeout: slackTimeout}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.api = slack.New(o.BotToken, n.clientOptions()...)
	return n, nil
}

// clientOptions are the options every slack.Client of this notifier uses.
func (n *SlackNotifier) clientOptions(extra ...slack.Option) []slack.Option {
	opts := []slack.Option{slack.OptionHTTPClient(n.client)}
	if n.apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(n.apiURL))
	}
	return append(opts, extra...)
}

// Validate reports whether r can be posted in full: it needs a channel and
// must fit in one message, the command split over several blocks but never
// shortened.
func (n *SlackNotifier) Validate(r *Request) error {
	if n.channelFor(r) == "" {
		return errors.New("approvals: no slack channel for the request")
	}
	// One block is kept free for the status line a decision adds.
	if len(messageBlocks(r, true))+1 > maxBlocks {
		return fmt.Errorf("%w (%d characters)", ErrTooLong, len(r.Display))
	}
	return nil
}

// Post sends the request message with Approve and Deny buttons.
func (n *SlackNotifier) Post(ctx context.Context, r *Request) (Message, error) {
	ch := n.channelFor(r)
	ch, ts, err := n.api.PostMessageContext(ctx, ch,
		slack.MsgOptionText(fallbackText(r), true),
		slack.MsgOptionBlocks(messageBlocks(r, r.State == StatePending)...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl())
	if err != nil {
		return Message{}, fmt.Errorf("post approval message: %w", err)
	}
	return Message{Channel: ch, TS: ts}, nil
}

// Update redraws the message of r: buttons while it is pending, the outcome
// and who decided once it is not. An r older than what the message already
// shows is not drawn.
func (n *SlackNotifier) Update(ctx context.Context, r *Request) error {
	if r.Message.TS == "" {
		return nil
	}
	d := n.drawing(r.Message)
	d.mu.Lock()
	defer d.mu.Unlock()
	p := progressOf(r)
	if p.before(d.last) {
		return nil
	}
	_, _, _, err := n.api.UpdateMessageContext(ctx, r.Message.Channel,
		r.Message.TS,
		slack.MsgOptionText(fallbackText(r), true),
		slack.MsgOptionBlocks(messageBlocks(r, r.State == StatePending)...))
	if err != nil {
		return fmt.Errorf("update approval message: %w", err)
	}
	d.last = p
	return nil
}

// drawing returns the drawing of message m, forgetting old ones.
func (n *SlackNotifier) drawing(m Message) *drawing {
	n.drawMu.Lock()
	defer n.drawMu.Unlock()
	now := time.Now()
	for k, d := range n.drawn {
		if now.Sub(d.at) > drawnTTL {
			delete(n.drawn, k)
		}
	}
	d := n.drawn[m]
	if d == nil {
		d = &drawing{}
		n.drawn[m] = d
	}
	d.at = now
	return d
}

// ephemeral shows text to one user in a channel.
func (n *SlackNotifier) ephemeral(ctx context.Context, channel, user, text string) error {
	_, err := n.api.PostEphemeralContext(ctx, channel, user,
		slack.MsgOptionText(text, true))
	if err != nil {
		return fmt.Errorf("post ephemeral reply: %w", err)
	}
	return nil
}

// userEmail returns the email Slack holds for a user, from a short cache.
func (n *SlackNotifier) userEmail(ctx context.Context, user string) (string, error) {
	n.mu.Lock()
	c, ok := n.emails[user]
	n.mu.Unlock()
	if ok && time.Since(c.at) < emailTTL {
		return c.email, nil
	}

	u, err := n.api.GetUserInfoContext(ctx, user)
	if err != nil {
		return "", fmt.Errorf("look up slack user: %w", err)
	}
	if u.Deleted || u.IsBot {
		return "", errors.New("look up slack user: deactivated or a bot")
	}
	email := normEmail(u.Profile.Email)
	if email == "" {
		return "", errors.New("look up slack user: no email visible")
	}

	n.mu.Lock()
	n.emails[user] = cachedEmail{email: email, at: time.Now()}
	n.mu.Unlock()
	return email, nil
}

// channelFor is the request's channel or the default.
func (n *SlackNotifier) channelFor(r *Request) string {
	if r.Channel != "" {
		return r.Channel
	}
	return n.channel
}

// fallbackText is the notification text. It names only our own id, tool and
// state; the caller of MsgOptionText escapes it.
func fallbackText(r *Request) string {
	return fmt.Sprintf("Approval request %s (%s): %s", r.ID, r.Tool, r.State)
}

// messageBlocks lays out the message: header, details, the full command,
// the status and, while live, the buttons.
func messageBlocks(r *Request, live bool) []slack.Block {
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain("Approval request")),
	}
	blocks = append(blocks, plainSections(detailsText(r))...)

	cmd := plainSections(r.Display)
	note := fmt.Sprintf("Full text of the call below: %d characters in %d "+
		"block(s), nothing shortened.", len([]rune(r.Display)), len(cmd))
	blocks = append(blocks, slack.NewContextBlock("", plain(note)))
	blocks = append(blocks, cmd...)

	if s := statusText(r); s != "" {
		blocks = append(blocks, plainSections(s)...)
	}
	if live {
		approve := slack.NewButtonBlockElement(actionApprove, r.ID,
			plain("Approve")).WithStyle(slack.StylePrimary)
		deny := slack.NewButtonBlockElement(actionDeny, r.ID,
			plain("Deny")).WithStyle(slack.StyleDanger)
		blocks = append(blocks, slack.NewActionBlock(blockPrefix+r.ID, approve, deny))
	}
	return blocks
}

// detailsText describes who asks for what.
func detailsText(r *Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Requester: %s\n", requester(r))
	fmt.Fprintf(&b, "Tool: %s\n", r.Tool)
	if r.Target != "" {
		fmt.Fprintf(&b, "Target: %s\n", r.Target)
	}
	fmt.Fprintf(&b, "Approvals needed: %d\n", max(r.Required, 1))
	fmt.Fprintf(&b, "Expires: %s\n", r.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "Request: %s", r.ID)
	if len(r.Reasons) > 0 {
		b.WriteString("\nReasons:")
		for _, reason := range r.Reasons {
			fmt.Fprintf(&b, "\n- %s", reason)
		}
	}
	return b.String()
}

// requester names the caller: the verified email, else subject and issuer.
func requester(r *Request) string {
	if r.Caller.Email != "" {
		return r.Caller.Email
	}
	if r.Caller.Issuer != "" {
		return r.Caller.Subject + " (" + r.Caller.Issuer + ")"
	}
	return r.Caller.Subject
}

// statusText says how the request stands; empty for a pending request
// without approvals.
func statusText(r *Request) string {
	approvers := func(approve bool) string {
		var names []string
		for _, d := range r.Decisions {
			if d.Approve == approve {
				names = append(names, d.Approver+" (via "+d.Via+")")
			}
		}
		return strings.Join(names, ", ")
	}
	when := func(t time.Time) string {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}

	switch r.State {
	case StatePending:
		if n := len(r.Approvals()); n > 0 {
			return fmt.Sprintf("Approved so far by %s: %d of %d needed.",
				approvers(true), n, max(r.Required, 1))
		}
		return ""
	case StateApproved:
		return "Approved by " + approvers(true) + ". Not run yet."
	case StateExecuted:
		return "Approved by " + approvers(true) + ". Run at " +
			when(r.ExecutedAt) + "."
	case StateDenied:
		return "Denied by " + approvers(false) + "."
	case StateExpired:
		if len(r.Approvals()) >= max(r.Required, 1) {
			return "Approved by " + approvers(true) + " but not run before " +
				when(r.ExpiresAt) + "; expired."
		}
		return "Expired at " + when(r.ExpiresAt) + " without a decision."
	}
	return "State: " + string(r.State)
}

// plain is a plain_text object with emoji conversion off.
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// plainSections shows text in as many plain_text sections as it needs.
func plainSections(text string) []slack.Block {
	var out []slack.Block
	for _, chunk := range splitText(text, maxTextCost) {
		out = append(out, slack.NewSectionBlock(plain(chunk), nil, nil))
	}
	return out
}

// splitText cuts text into pieces that each cost at most limit and that
// join back to exactly text. It prefers to cut after a newline in the second
// half of a piece.
func splitText(text string, limit int) []string {
	var out []string
	for text != "" {
		cost, end, lastNL := 0, len(text), -1
		for i, r := range text {
			c := runeCost(r)
			if cost+c > limit {
				end = i
				break
			}
			cost += c
			if r == '\n' {
				lastNL = i + 1
			}
		}
		if end < len(text) && lastNL > end/2 {
			end = lastNL
		}
		out = append(out, text[:end])
		text = text[end:]
	}
	return out
}

// runeCost is how many characters Slack may count for r.
func runeCost(r rune) int {
	switch r {
	case '<', '>':
		return 4 // &lt; &gt;
	case '&':
		return 5 // &amp;
	}
	if n := utf16.RuneLen(r); n > 0 {
		return n
	}
	return 2
}
