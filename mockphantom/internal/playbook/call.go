package playbook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what is kept of an answer.
const (
	maxAnswerBytes = 1 << 20 // a larger answer is kept as text, cut
	maxTextBytes   = 4 << 10 // an answer that is not JSON, kept as a string
	maxQuoteBytes  = 200     // of such an answer, in a message
)

// attempt is the outcome of one call.
type attempt struct {
	ok         bool
	transient  bool // worth calling again
	message    string
	answer     json.RawMessage
	retryAfter time.Duration
}

// call posts body to p's endpoint, again after transient failures as
// e.Retry says, and returns the outcome of the last call.
func (e *Engine) call(ctx context.Context, p *playbook, body []byte) Result {
	r := e.Retry
	for n := 1; ; n++ {
		a := e.attempt(ctx, p, body)
		if a.ok {
			return Result{Status: StatusSuccess, Message: a.message, Answer: a.answer}
		}
		if !a.transient || n >= r.Attempts {
			if n > 1 {
				a.message += fmt.Sprintf(" (after %d attempts)", n)
			}
			return Result{Status: StatusFailed, Message: a.message, Answer: a.answer}
		}
		wait := r.Backoff << (n - 1)
		if a.retryAfter > r.MaxWait {
			return Result{Status: StatusFailed, Answer: a.answer, Message: fmt.Sprintf(
				"%s; it asks to come back in %s, longer than the %s a playbook waits", a.message, a.retryAfter, r.MaxWait)}
		}
		if a.retryAfter > 0 {
			wait = a.retryAfter
		}
		e.log.DebugContext(ctx, "responder call failed; retrying", "playbook", p.Name, "attempt", n,
			"wait", wait, "message", a.message)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{Status: StatusFailed, Answer: a.answer,
				Message: "mockphantom stopped before the action was done; last: " + a.message}
		case <-t.C:
		}
	}
}

// attempt makes one call.
func (e *Engine) attempt(ctx context.Context, p *playbook, body []byte) attempt {
	callCtx, cancel := context.WithTimeout(ctx, e.Retry.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return attempt{message: fmt.Sprintf("failed to build the request: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mockphantom-playbook")
	res, err := p.client.Do(req)
	if err != nil {
		return transportFailure(ctx, err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes+1))
	if err != nil {
		return attempt{transient: true, message: fmt.Sprintf("the responder answered %d, then reading the answer failed: %v", res.StatusCode, err)}
	}
	return answerOf(res.StatusCode, res.Header, raw, time.Now())
}

// transportFailure describes a call that got no answer. ctx is the
// caller's: when it ended, mockphantom is stopping.
func transportFailure(ctx context.Context, err error) attempt {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
	)
	switch {
	case ctx.Err() != nil:
		return attempt{message: "mockphantom stopped before the responder answered"}
	case errors.As(err, &verify), errors.As(err, &authority), errors.As(err, &hostname):
		return attempt{message: fmt.Sprintf("the responder's certificate is not trusted (check responder.ca_file): %v", err)}
	}
	// Refused or reset connections, unknown hosts while DNS catches up,
	// timeouts: all may pass.
	return attempt{transient: true, message: err.Error()}
}

// answer is what the responder answers (docs/respond.md).
type answer struct {
	Message  string   `json:"message"`
	Warnings []string `json:"warnings"`
	Error    *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// answerOf reads one answer.
func answerOf(status int, h http.Header, raw []byte, now time.Time) attempt {
	a := attempt{answer: keep(raw)}
	var ans answer
	isJSON := len(raw) <= maxAnswerBytes && json.Unmarshal(raw, &ans) == nil
	if status >= 200 && status < 300 {
		a.ok = true
		a.message = ans.Message
		if a.message == "" {
			a.message = fmt.Sprintf("the responder answered %d without a message", status)
		}
		if len(ans.Warnings) > 0 {
			a.message += "; warnings: " + strings.Join(ans.Warnings, "; ")
		}
		return a
	}
	var detail string
	switch {
	case isJSON && ans.Error != nil:
		detail = strings.TrimSpace(ans.Error.Code + ": " + ans.Error.Message)
	case isJSON && ans.Message != "":
		detail = ans.Message
	case len(bytes.TrimSpace(raw)) > 0:
		detail = cut(strings.TrimSpace(string(raw)), maxQuoteBytes)
	default:
		detail = http.StatusText(status)
	}
	a.message = fmt.Sprintf("the responder answered %d %s", status, detail)
	switch {
	case status == http.StatusUnauthorized:
		a.message += " (check responder.token_file)"
	case status >= 300 && status < 400:
		a.message += " (redirects are not followed: check responder.url)"
	}
	a.transient = status >= 500 || status == http.StatusTooManyRequests
	if a.transient {
		a.retryAfter = retryAfter(h.Get("Retry-After"), now)
	}
	return a
}

// keep returns what is kept of an answer: itself when it is JSON, else
// its (cut) text as a JSON string; nil for an empty one.
func keep(raw []byte) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if len(raw) <= maxAnswerBytes && json.Valid(raw) {
		return json.RawMessage(raw)
	}
	s, _ := json.Marshal(cut(strings.ToValidUTF8(string(raw), "\uFFFD"), maxTextBytes))
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(min(max(secs, 0), 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// cut shortens s to at most n bytes on a rune boundary, and says so.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
