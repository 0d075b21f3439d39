package approvals

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultExpiry = 15 * time.Minute
	DefaultWait   = 2 * time.Minute

	// pollEvery is how often Wait reports progress and rereads the store,
	// which catches decisions made by another process (the CLI).
	pollEvery = time.Second
	// sweepEvery is how often Run expires overdue requests.
	sweepEvery = 10 * time.Second
)

// Log keys.
const (
	keyRequest   = "request_id"
	keyTool      = "tool"
	keyState     = "state"
	keyVia       = "via"
	keyType      = "type"
	keySlackUser = "slack_user"
	keyReason    = "reason"
	keyRemote    = "remote"
	keyError     = "error"
)

// Notifier shows requests to approvers, usually in Slack.
type Notifier interface {
	// Validate reports whether r can be shown in full; Open refuses a
	// request that cannot (ErrTooLong, or a missing channel).
	Validate(r *Request) error
	// Post shows a new request and returns where the message lives.
	Post(ctx context.Context, r *Request) (Message, error)
	// Update redraws the message of r after a decision, expiry or
	// execution. It does nothing for a request without a message.
	Update(ctx context.Context, r *Request) error
}

// EventType names what happened to a request.
type EventType string

// The events the service reports through Options.OnEvent.
const (
	EventOpened   EventType = "approval_opened"
	EventDecided  EventType = "approval_decided"
	EventExpired  EventType = "approval_expired"
	EventExecuted EventType = "approval_executed"
)

// Event tells the transcript what happened to a request. Request is a copy
// taken right after the change; Decision is set for EventDecided.
type Event struct {
	Type     EventType
	At       time.Time
	Request  *Request
	Decision *Decision
}

// Options configures a Service.
type Options struct {
	// Expiry is how long a request waits for a decision, and how long a
	// decision stays usable afterwards. Default 15m.
	Expiry time.Duration
	// Wait is how long Wait blocks before the caller is told the request
	// is still pending. Default 2m.
	Wait time.Duration
	// People is the approver directory: it maps Slack users to emails and
	// emails to groups. Group membership is only ever taken from here.
	People []Person
	// Notifier shows requests to approvers; nil means no Slack, and requests
	// are decided through Decide (the CLI) only.
	Notifier Notifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnEvent receives every change, for the transcript. It is called
	// synchronously after the change is stored and must not block.
	OnEvent func(Event)
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// Service runs the approval workflow on a Store.
type Service struct {
	store    Store
	expiry   time.Duration
	wait     time.Duration
	people   []Person
	notifier Notifier
	now      func() time.Time
	onEvent  func(Event)
	log      *slog.Logger

	// poll and sweep are pollEvery and sweepEvery; tests shorten them.
	poll  time.Duration
	sweep time.Duration
	// blocking, if set, is called when Wait is about to block; tests use it.
	blocking func(id string)

	// openMu makes Open's find-or-create atomic within this process.
	openMu sync.Mutex
	hub    hub

	// posting holds the ids whose Slack message is being posted, so that
	// concurrent Opens do not post twice.
	postMu  sync.Mutex
	posting map[string]bool

	// stop is closed by StopWaiting; stopOnce guards the close.
	stop     chan struct{}
	stopOnce sync.Once
}

// StopWaiting ends every current and future Wait at once, each returning
// its request as it stands: a server that is shutting down answers its
// waiting calls "still pending", and their re-calls resume the requests,
// on this replica after a restart or on another one.
func (s *Service) StopWaiting() {
	s.stopOnce.Do(func() { close(s.stop) })
}

// stopped is closed once StopWaiting has been called.
func (s *Service) stopped() <-chan struct{} { return s.stop }

// New returns a service that keeps its requests in the SQLite database db
// (driver "sqlite"), creating its tables if needed.
func New(db *sql.DB, o Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("approvals: no database")
	}
	return NewWithStore(context.Background(), NewSQLiteStore(db), o)
}

// NewWithStore returns a service on any Store, migrating it first.
func NewWithStore(ctx context.Context, st Store, o Options) (*Service, error) {
	if o.Expiry < 0 || o.Wait < 0 {
		return nil, errors.New("approvals: expiry and wait must not be negative")
	}
	people, err := checkPeople(o.People)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}

	s := &Service{
		store:    st,
		expiry:   cmp(o.Expiry, DefaultExpiry),
		wait:     cmp(o.Wait, DefaultWait),
		people:   people,
		notifier: o.Notifier,
		now:      o.Now,
		onEvent:  o.OnEvent,
		log:      o.Logger,
		poll:     pollEvery,
		sweep:    sweepEvery,
		posting:  map[string]bool{},
		stop:     make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// cmp returns d, or def when d is zero.
func cmp(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// checkPeople validates the directory and normalises its emails.
func checkPeople(in []Person) ([]Person, error) {
	out := make([]Person, 0, len(in))
	seenEmail := map[string]bool{}
	seenSlack := map[string]bool{}
	for i, p := range in {
		p.Email = normEmail(p.Email)
		if p.Email == "" || !strings.Contains(p.Email, "@") {
			return nil, fmt.Errorf("approvals: people[%d]: email is required", i)
		}
		if seenEmail[p.Email] {
			return nil, fmt.Errorf("approvals: people[%d]: email %s listed twice", i, p.Email)
		}
		seenEmail[p.Email] = true
		if p.SlackUser != "" {
			if seenSlack[p.SlackUser] {
				return nil, fmt.Errorf("approvals: people[%d]: slack_user %s listed twice", i, p.SlackUser)
			}
			seenSlack[p.SlackUser] = true
		}
		p.Groups = slices.Clone(p.Groups)
		out = append(out, p)
	}
	return out, nil
}

// Open finds the caller's latest request for this exact call, or creates a
// new pending one and shows it to approvers. It returns:
//   - a pending request: wait for it (Wait);
//   - an approved one: Claim it, then run it with its stored Arguments;
//   - a denied one: answer denied (until its ExpiresAt; later calls open a
//     new request);
//   - an expired one: answer expired; it is marked acknowledged, so the next
//     call opens a new request.
//
// r supplies Caller, Tool, Target, Arguments, Display, Reasons, Approvers,
// Required and Channel; Digest, if set, must match. The other fields are
// ignored. A resumed request keeps the approvers it was opened with.
func (s *Service) Open(ctx context.Context, r Request) (*Request, error) {
	fresh, err := s.prepare(r)
	if err != nil {
		return nil, err
	}

	s.openMu.Lock()
	got, created, err := s.findOrCreate(ctx, fresh)
	s.openMu.Unlock()
	if err != nil {
		return nil, err
	}

	if created {
		s.log.Info("approval request opened", keyRequest, got.ID,
			keyTool, got.Tool)
		s.emit(Event{Type: EventOpened, Request: got})
	}
	if got.State == StatePending && got.Message.TS == "" {
		s.post(ctx, got)
	}
	return got.clone(), nil
}

// prepare validates a request from Open and fills in what the service
// owns: canonical arguments, digest, id, times and state.
func (s *Service) prepare(r Request) (*Request, error) {
	if r.Caller.Subject == "" {
		return nil, errors.New("approvals: open: caller subject is required")
	}
	if r.Tool == "" {
		return nil, errors.New("approvals: open: tool is required")
	}
	if strings.TrimSpace(r.Display) == "" {
		return nil, errors.New("approvals: open: display text is required")
	}
	if r.Required < 0 {
		return nil, errors.New("approvals: open: required must not be negative")
	}
	if r.Required == 0 {
		r.Required = 1
	}

	canon, err := Canonical(r.Arguments)
	if err != nil {
		return nil, fmt.Errorf("approvals: open: %w", err)
	}
	digest := digestCanonical(r.Tool, r.Target, canon)
	if r.Digest != "" && r.Digest != digest {
		return nil, errors.New("approvals: open: digest does not match the call")
	}

	r.Arguments = canon
	r.Digest = digest
	r.Approvers = normApprovers(r.Approvers)
	if n := len(s.eligible(&r)); n < r.Required {
		return nil, fmt.Errorf("%w: %d eligible, %d required", ErrNoApprovers,
			n, r.Required)
	}

	now := s.now().UTC()
	r.ID = newID()
	r.CreatedAt = now
	r.ExpiresAt = now.Add(s.expiry)
	r.State = StatePending
	r.Decisions = nil
	r.Acknowledged = false
	r.DecidedAt, r.ExecutedAt = time.Time{}, time.Time{}
	r.Message = Message{}
	if s.notifier != nil {
		if err := s.notifier.Validate(&r); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// findOrCreate applies Open's rules to the caller's latest request for the
// digest. It reports whether fresh was stored. openMu serialises this
// within the process; a store shared between processes refuses a second
// live request (ErrDuplicate), and the rules are then applied again to
// the request the other process stored.
func (s *Service) findOrCreate(ctx context.Context, fresh *Request) (*Request, bool, error) {
	const tries = 3
	for i := 1; ; i++ {
		got, created, err := s.findOrCreateOnce(ctx, fresh)
		if !errors.Is(err, ErrDuplicate) || i == tries {
			return got, created, err
		}
	}
}

// findOrCreateOnce is one attempt of findOrCreate.
func (s *Service) findOrCreateOnce(ctx context.Context, fresh *Request) (*Request, bool, error) {
	latest, err := s.store.Latest(ctx, fresh.Caller, fresh.Digest)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}

	if latest != nil {
		reuse, err := s.reuse(ctx, latest)
		if err != nil {
			return nil, false, err
		}
		if reuse != nil {
			return reuse, false, nil
		}
	}

	if err := s.store.Insert(ctx, fresh); err != nil {
		return nil, false, err
	}
	return fresh, true, nil
}

// reuse decides whether Open answers with the existing request r; it returns
// nil when a new request is needed.
func (s *Service) reuse(ctx context.Context, r *Request) (*Request, error) {
	now := s.now()
	if r.due(now) || (r.State == StateExpired && !r.Acknowledged) {
		return s.expire(ctx, r.ID, true)
	}
	switch r.State {
	case StatePending, StateApproved:
		return r, nil
	case StateDenied:
		if now.Before(r.ExpiresAt) {
			return r, nil
		}
	}
	return nil, nil
}

// Wait blocks until the request leaves pending, ctx ends, Options.Wait
// passes or StopWaiting is called, and returns the request as it then
// stands (still pending after a timeout or a stop, with a nil error). progress, if not nil, is called about once a
// second. A decision made in this process wakes Wait at once; one made
// elsewhere is seen at the next poll. An expired request returned by Wait is
// marked acknowledged.
func (s *Service) Wait(ctx context.Context, id string,
	progress func(elapsed, total time.Duration)) (*Request, error) {
	start := time.Now()
	timeout := time.NewTimer(s.wait)
	defer timeout.Stop()
	tick := time.NewTicker(s.poll)
	defer tick.Stop()

	for {
		changed, release := s.hub.subscribe(id)
		r, err := s.store.Get(ctx, id)
		if err != nil {
			release()
			return nil, err
		}
		if r.due(s.now()) || (r.State == StateExpired && !r.Acknowledged) {
			release()
			return s.expire(ctx, id, true)
		}
		if r.State != StatePending {
			release()
			return r, nil
		}

		if s.blocking != nil {
			s.blocking(id)
		}
		select {
		case <-ctx.Done():
			release()
			return r, fmt.Errorf("approvals: wait for %s: %w", id, ctx.Err())
		case <-timeout.C:
			release()
			return r, nil
		case <-s.stopped():
			release()
			return r, nil
		case <-changed:
		case <-tick.C:
			if progress != nil {
				progress(time.Since(start), s.wait)
			}
		}
		release()
	}
}

// Decide records one person's decision on a pending request. The person
// must not be the requester, must be allowed by the request's Approvers (by
// email, or by a group the directory gives them; by.Groups is ignored) and
// counts once. A deny denies; Required distinct approvals approve. It fails
// with ErrNotFound, ErrExpired, ErrSelfApproval, ErrNotApprover,
// ErrAlreadyDecided or a StateError matching ErrNotPending, and then changes
// nothing.
func (s *Service) Decide(ctx context.Context, id string, by Person,
	approve bool, via string) (*Request, error) {
	if via != ViaSlack && via != ViaCLI && via != ViaElicitation {
		return nil, fmt.Errorf("approvals: decide: unknown channel %q", via)
	}
	who := s.resolve(by)

	var expired bool
	r, err := s.store.Update(ctx, id, func(r *Request) (*Decision, error) {
		now := s.now().UTC()
		if r.due(now) {
			r.State = StateExpired
			expired = true
			return nil, nil
		}
		if err := s.mayDecide(r, who); err != nil {
			return nil, err
		}

		d := &Decision{Approver: who.Email, SlackUser: who.SlackUser,
			Subject: who.Subject, Issuer: who.Issuer, Approve: approve,
			Via: via, At: now}
		switch {
		case !approve:
			r.State = StateDenied
		case len(r.Approvals())+1 >= max(r.Required, 1):
			r.State = StateApproved
		}
		if r.State != StatePending {
			r.DecidedAt = now
			r.ExpiresAt = now.Add(s.expiry)
		}
		return d, nil
	})
	if err != nil {
		if r != nil {
			s.log.Info("approval decision refused", keyRequest, id,
				keyState, r.State, keyVia, via, keyError, err)
		}
		return nil, err
	}

	if expired {
		s.expired(ctx, r)
		return nil, fmt.Errorf("%w: %s", ErrExpired, id)
	}
	d := r.Decisions[len(r.Decisions)-1]
	s.log.Info("approval decision recorded", keyRequest, id, keyState,
		r.State, keyVia, via)
	s.emit(Event{Type: EventDecided, Request: r, Decision: &d})
	s.hub.notify(id)
	s.redraw(ctx, r)
	return r.clone(), nil
}

// mayDecide checks a decision against the state and the approver rules.
func (s *Service) mayDecide(r *Request, who Person) error {
	if r.State == StateExpired {
		return fmt.Errorf("%w: %s", ErrExpired, r.ID)
	}
	if r.State != StatePending {
		return &StateError{ID: r.ID, State: r.State, want: StatePending}
	}
	if s.isRequester(r, who) {
		return ErrSelfApproval
	}
	if !allowed(r, who) {
		return ErrNotApprover
	}
	for _, d := range r.Decisions {
		if d.Approver == who.Email {
			return ErrAlreadyDecided
		}
	}
	return nil
}

// Claim moves an approved request to executed, exactly once. The guard
// calls it right before running the call and runs it only if Claim
// succeeded, with the returned request's Arguments. A second Claim fails with
// ErrAlreadyExecuted; an approval past its ExpiresAt with ErrExpired.
func (s *Service) Claim(ctx context.Context, id string) (*Request, error) {
	var expired bool
	r, err := s.store.Update(ctx, id, func(r *Request) (*Decision, error) {
		now := s.now().UTC()
		switch {
		case r.due(now):
			r.State = StateExpired
			expired = true
		case r.State == StateExecuted:
			return nil, fmt.Errorf("%w: %s", ErrAlreadyExecuted, id)
		case r.State == StateExpired:
			return nil, fmt.Errorf("%w: %s", ErrExpired, id)
		case r.State != StateApproved:
			return nil, &StateError{ID: id, State: r.State, want: StateApproved}
		default:
			r.State = StateExecuted
			r.ExecutedAt = now
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	if expired {
		s.expired(ctx, r)
		return nil, fmt.Errorf("%w: %s", ErrExpired, id)
	}

	s.log.Info("approved call claimed", keyRequest, id, keyTool, r.Tool)
	s.emit(Event{Type: EventExecuted, Request: r})
	s.hub.notify(id)
	s.redraw(ctx, r)
	return r.clone(), nil
}

// Get returns a request, with its state judged now: a pending request past
// its deadline reads as expired even before ExpireDue stores that.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.due(s.now()) {
		r.State = StateExpired
	}
	return r, nil
}

// List returns requests, newest first, with states judged now.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Request, error) {
	now := s.now()
	f.Now = now
	out, err := s.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].due(now) {
			out[i].State = StateExpired
		}
	}
	return out, nil
}

// ExpireDue stores the expiry of every request past its deadline, updates
// their Slack messages and reports how many it expired.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	ids, err := s.store.Due(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		r, err := s.expire(ctx, id, false)
		if err != nil {
			return n, err
		}
		if r.State == StateExpired {
			n++
		}
	}
	return n, nil
}

// Run expires overdue requests every few seconds until ctx ends. On a
// store that is a Watcher it also listens for changes made by other
// processes and wakes the matching Wait at once.
func (s *Service) Run(ctx context.Context) error {
	if w, ok := s.store.(Watcher); ok {
		go func() { _ = w.Watch(ctx, s.hub.notify) }()
	}
	t := time.NewTicker(s.sweep)
	defer t.Stop()
	for {
		if _, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("expire approval requests", keyError, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// expire stores that request id expired if it is past its deadline, and
// marks it acknowledged when ack is set (the caller is being told). It
// returns the request as stored.
func (s *Service) expire(ctx context.Context, id string, ack bool) (*Request, error) {
	var changed bool
	r, err := s.store.Update(ctx, id, func(r *Request) (*Decision, error) {
		if r.due(s.now()) {
			r.State = StateExpired
			changed = true
		}
		if ack && r.State == StateExpired {
			r.Acknowledged = true
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.expired(ctx, r)
	}
	return r, nil
}

// expired reports a request that has just been stored as expired.
func (s *Service) expired(ctx context.Context, r *Request) {
	s.log.Info("approval request expired", keyRequest, r.ID, keyTool, r.Tool)
	s.emit(Event{Type: EventExpired, Request: r})
	s.hub.notify(r.ID)
	s.redraw(ctx, r)
}

// post shows a pending request to approvers and records its message. A
// failure is logged: the request stays pending and can still be decided
// through the CLI, and the next Open of the same call tries again.
func (s *Service) post(ctx context.Context, r *Request) {
	if s.notifier == nil {
		return
	}
	s.postMu.Lock()
	if s.posting[r.ID] {
		s.postMu.Unlock()
		return
	}
	s.posting[r.ID] = true
	s.postMu.Unlock()
	defer func() {
		s.postMu.Lock()
		delete(s.posting, r.ID)
		s.postMu.Unlock()
	}()

	// A concurrent Open may have posted since r was read.
	if cur, err := s.store.Get(ctx, r.ID); err == nil && cur.Message.TS != "" {
		r.Message = cur.Message
		return
	}
	m, err := s.notifier.Post(ctx, r)
	if err != nil {
		s.log.Error("post approval request", keyRequest, r.ID, keyError, err)
		return
	}
	if err := s.store.SetMessage(ctx, r.ID, m); err != nil {
		s.log.Error("record approval message", keyRequest, r.ID, keyError, err)
		return
	}
	r.Message = m
}

// redraw updates the Slack message of r, logging a failure.
func (s *Service) redraw(ctx context.Context, r *Request) {
	if s.notifier == nil || r.Message.TS == "" {
		return
	}
	if err := s.notifier.Update(ctx, r); err != nil {
		s.log.Error("update approval message", keyRequest, r.ID, keyError, err)
	}
}

// emit hands a copy of the event to Options.OnEvent.
func (s *Service) emit(e Event) {
	if s.onEvent == nil {
		return
	}
	e.At = s.now().UTC()
	e.Request = e.Request.clone()
	s.onEvent(e)
}

// newID returns a random request id. It is base32, never hex, so that it
// cannot be mistaken for a digest or a signature.
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return "apr-" + strings.ToLower(enc.EncodeToString(b[:]))
}
