package masking

import (
	"errors"
	"io"
	"strings"
)

// Writer bounds: the detector stage holds back window bytes (and keeps
// contextLen bytes of what it already wrote, for look-behind), so a
// finding cut across writes is still seen whole. Every finding but a
// private key block is shorter than window. It buffers batch windows
// before it works, so each byte is searched about batch/(batch-1) times.
const (
	chunkSize  = 32 << 10
	window     = 32 << 10
	batch      = 4
	contextLen = 256
	keyTail    = 128
)

// ErrClosed is returned by Writer.Write after Close.
var ErrClosed = errors.New("masking: writer is closed")

// Writer masks a stream in bounded memory, for large shell output and file
// content. Its output is the same as String's on the whole stream however
// the input is split into writes. It keeps at most about 200 KiB; inside
// a private key block it keeps only the last bytes while it looks for the
// END line, and a block without one is masked to the end of the stream.
//
// Write reports the whole input as written even when part of it is held
// back; Close flushes the rest (it does not close the underlying writer).
type Writer struct {
	head   sink
	t      tally
	err    error
	closed bool
}

// sink is one stage of the Writer's pipeline.
type sink interface {
	write(s string) error
	close() error
}

// NewWriter returns a Writer that writes the masked stream to w. The
// pipeline is the same as String's: scrub secrets, detect, and scrub again
// when a secret could run into a masked form.
func (m *Masker) NewWriter(w io.Writer) *Writer {
	wr := &Writer{}
	var next sink = &outSink{w: w}
	if m.rescrub {
		next = &scrubStage{a: m.ac, next: next, t: &wr.t}
	}
	if m.set != 0 {
		next = &detectStage{m: m, set: m.set, next: next, t: &wr.t}
	}
	if m.secrets {
		next = &scrubStage{a: m.ac, next: next, t: &wr.t}
	}
	wr.head = next
	return wr
}

// Write masks p and passes on what can no longer change.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.head.write(string(p)); err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

// Close flushes everything held back. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.err = w.head.close()
	}
	return w.err
}

// Counts returns the findings masked so far; after Close, all of them.
func (w *Writer) Counts() Counts { return w.t.counts() }

type outSink struct{ w io.Writer }

func (o *outSink) write(s string) error {
	_, err := io.WriteString(o.w, s)
	return err
}

func (o *outSink) close() error { return nil }

// scrubStage removes secrets from a stream. It holds back the bytes that
// may still start a match: as many as the automaton's current depth, and
// any match that a later one could overlap.
type scrubStage struct {
	a    *automaton
	next sink
	t    *tally
	pend []byte
	off  int32      // automaton row offset after pend
	ivs  []interval // matches in pend, merged
}

func (s *scrubStage) write(in string) error {
	for len(in) > 0 {
		n := min(len(in), chunkSize)
		s.feed(in[:n])
		in = in[n:]
		if err := s.emit(false); err != nil {
			return err
		}
	}
	return nil
}

func (s *scrubStage) feed(in string) {
	base := len(s.pend)
	s.pend = append(s.pend, in...)
	for i := 0; i < len(in); i++ {
		var st int32
		s.off, st = s.a.step(s.off, in[i])
		if st < 0 {
			continue
		}
		if l := int(s.a.secLen[st]); l > 0 {
			end := base + i + 1
			s.ivs = addInterval(s.ivs, end-l, end)
		}
	}
}

func (s *scrubStage) emit(final bool) error {
	safe := len(s.pend)
	if !final {
		safe -= int(s.a.depth[s.a.state(s.off)])
	}
	k := len(s.ivs)
	if k > 0 && s.ivs[k-1].end > safe {
		k--
		safe = min(safe, s.ivs[k].start)
	}

	var b strings.Builder
	last := 0
	for _, iv := range s.ivs[:k] {
		b.Write(s.pend[last:iv.start])
		b.WriteString(markers[rSecret])
		s.t[rSecret]++
		last = iv.end
	}
	b.Write(s.pend[last:safe])
	if b.Len() > 0 {
		if err := s.next.write(b.String()); err != nil {
			return err
		}
	}

	s.pend = s.pend[:copy(s.pend, s.pend[safe:])]
	s.ivs = s.ivs[:copy(s.ivs, s.ivs[k:])]
	for i := range s.ivs {
		s.ivs[i].start -= safe
		s.ivs[i].end -= safe
	}
	return nil
}

func (s *scrubStage) close() error {
	if err := s.emit(true); err != nil {
		return err
	}
	return s.next.close()
}

// detectStage runs the detectors on a stream. It buffers batch windows,
// writes out all but the last window (cutting after a newline when
// it can, as findings never cross one), and keeps a little of what it
// wrote as left context.
type detectStage struct {
	m    *Masker
	set  ruleSet
	next sink
	t    *tally
	buf  []byte
	ctx  int // buf[:ctx] was written already and is only context
	// keyMode is set inside a private key block whose END line has not
	// arrived; buf then holds only the block's last bytes.
	keyMode bool
}

func (d *detectStage) write(in string) error {
	for len(in) > 0 {
		room := max(d.ctx+batch*window-len(d.buf), 1)
		n := min(len(in), room)
		d.buf = append(d.buf, in[:n]...)
		in = in[n:]
		if err := d.flush(false); err != nil {
			return err
		}
	}
	return nil
}

func (d *detectStage) close() error {
	if err := d.flush(true); err != nil {
		return err
	}
	return d.next.close()
}

func (d *detectStage) flush(final bool) error {
	for {
		if d.keyMode {
			if !d.skipKey(final) {
				return nil
			}
			continue
		}
		pending := len(d.buf) - d.ctx
		if pending == 0 || !final && pending < batch*window {
			return nil
		}
		if err := d.step(final); err != nil {
			return err
		}
	}
}

// step writes out the part of the buffer that more input cannot change.
func (d *detectStage) step(final bool) error {
	text := string(d.buf)
	sc := getScratch()
	defer putScratch(sc)
	d.m.ac.scan(text, sc)
	var spans []span
	if mayDetect(sc, d.set, text) {
		spans = d.m.spans(text, sc, d.set, final)
	}

	cut := len(text)
	if !final {
		cut -= window
		if nl := strings.LastIndexByte(text[d.ctx:cut], '\n'); nl >= 0 {
			cut = d.ctx + nl + 1
		}
	}

	// Move the cut so that no finding straddles it; stop before a key
	// block without an END line.
	var open *span
	for i := range spans {
		sp := &spans[i]
		if sp.end <= d.ctx {
			continue
		}
		if sp.open && sp.start >= d.ctx {
			cut, open = sp.start, sp
			break
		}
		if sp.start < cut && sp.end > cut {
			// Hold a finding back, unless it is a complete key block (its
			// END line is in the buffer) or holding it would stall.
			if sp.rule == rPrivateKey || sp.start <= d.ctx {
				cut = sp.end
			} else {
				cut = sp.start
			}
		}
	}

	var b strings.Builder
	last, segStart := d.ctx, 0
	for _, sp := range spans {
		if sp.end <= d.ctx || sp.start >= cut {
			continue
		}
		if sp.start < d.ctx {
			// A finding reaching back into text already written; mask
			// what is left of it.
			b.WriteString(markers[sp.rule])
		} else {
			b.WriteString(text[last:sp.start])
			writeMasked(&b, text[sp.start:sp.end], sp)
		}
		d.t[sp.rule]++
		last = sp.end
		if sp.rule == rPrivateKey {
			segStart = sp.end
		}
	}
	b.WriteString(text[last:cut])
	if open != nil {
		b.WriteString(markers[rPrivateKey])
		d.t[rPrivateKey]++
	}
	if b.Len() > 0 {
		if err := d.next.write(b.String()); err != nil {
			return err
		}
	}

	if open != nil {
		_, hdrEnd, _ := pemLabel(text, open.start+len(pemBegin), final)
		d.buf = append(d.buf[:0], text[hdrEnd:]...)
		d.ctx = 0
		d.keyMode = true
		return nil
	}
	keep := max(segStart, cut-contextLen)
	d.buf = append(d.buf[:0], text[keep:]...)
	d.ctx = cut - keep
	return nil
}

// skipKey drops key material until the END line; it reports whether the
// block is over.
func (d *detectStage) skipKey(final bool) bool {
	text := string(d.buf)
	i := indexFold(text, pemEnd)
	if i < 0 {
		if final {
			d.buf, d.keyMode = d.buf[:0], false
			return true
		}
		if len(d.buf) > keyTail {
			d.buf = d.buf[:copy(d.buf, d.buf[len(d.buf)-keyTail:])]
		}
		return false
	}
	_, end, complete := pemLabel(text, i+len(pemEnd), final)
	if !complete {
		d.buf = d.buf[:copy(d.buf, d.buf[i:])]
		return false
	}
	d.buf = d.buf[:copy(d.buf, d.buf[end:])]
	d.ctx, d.keyMode = 0, false
	return true
}
