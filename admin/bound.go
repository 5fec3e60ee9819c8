package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dsexport/dsexport/poller"
)

// MaxAnswer is the most bytes of an Admin API answer's body that are read.
// A real answer is a few kilobytes (the largest an export can make, with 100
// kinds of 1,500 bytes in its filter, holds 150 KB of names, 300 KB if the
// API \u-escapes them). A broken or hostile answer may be far longer: one of
// up to MaxAnswer is read, and its strings bounded (poller.Operation.Bounded),
// so that a FAILED operation with a 20 MB message still reports the failure;
// a longer body is not parsed, and the call fails with an error that says it
// was cut. The memory a read takes is bounded by it.
const MaxAnswer = 32 << 20

// cutError is the failure to read an answer whose body is over MaxAnswer.
type cutError struct {
	// length is the body's Content-Length, or -1 when it was not sent.
	length int64
}

func (e *cutError) Error() string {
	if e.length > MaxAnswer {
		return fmt.Sprintf("answer cut: a body of %d bytes, over the %d read, not parsed", e.length, MaxAnswer)
	}
	return fmt.Sprintf("answer cut: a body over %d bytes, not parsed", MaxAnswer)
}

// cutMark, carried by a request's context, learns whether the answer's
// body was cut: an error answer's body is read by googleapi, whose error
// keeps the part read but not why it ended.
type cutMark struct{ err *cutError }

type cutKey struct{}

// boundTransport hands every answer over with its body read through a
// bound: past MaxAnswer bytes, a read fails with a *cutError.
type boundTransport struct{ base http.RoundTripper }

func (t boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	mark, _ := req.Context().Value(cutKey{}).(*cutMark)
	resp.Body = &boundedBody{rc: resp.Body, left: MaxAnswer, length: resp.ContentLength, mark: mark}
	return resp, nil
}

// boundClient is hc with its transport behind a boundTransport.
func boundClient(hc *http.Client) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = boundTransport{base: base}
	return &c
}

// boundedBody reads at most left more bytes of rc. It asks rc for one byte
// more than it may give, to tell a body of exactly MaxAnswer bytes from a
// longer one.
type boundedBody struct {
	rc     io.ReadCloser
	left   int64
	length int64
	mark   *cutMark
	err    *cutError
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.err = &cutError{length: b.length}
		if b.mark != nil {
			b.mark.err = b.err
		}
		return n - 1, b.err
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// bounded calls do with a context that notes a cut answer, and returns its
// error bounded (boundError).
func bounded(ctx context.Context, do func(ctx context.Context) error) error {
	var mark cutMark
	err := do(context.WithValue(ctx, cutKey{}, &mark))
	return boundError(err, &mark)
}

// boundError bounds the text of an Admin API call's error to
// poller.MaxErrorText bytes: an HTTP error body, a google.rpc status
// message and its details can be of any size. When the answer's body was
// cut, the text says so, whether or not it had to be shortened. The error
// itself (a *googleapi.Error with its status and headers) stays wrapped for
// errors.As.
func boundError(err error, mark *cutMark) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	var ce *cutError
	switch {
	case mark.err != nil && !errors.As(err, &ce):
		text = poller.CutText(text, poller.MaxErrorText, " … ["+mark.err.Error()+"]")
	case len(text) > poller.MaxErrorText:
		text = poller.BoundText(text, poller.MaxErrorText)
	default:
		return err
	}
	return &boundedError{err: err, text: text}
}

// boundedError is err with a bounded text.
type boundedError struct {
	err  error
	text string
}

func (e *boundedError) Error() string { return e.text }
func (e *boundedError) Unwrap() error { return e.err }
