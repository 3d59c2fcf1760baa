package responder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// MaxBody bounds a request's body.
const MaxBody = 64 << 10

// call is one action request being answered.
type call struct {
	id     string
	action respond.Action
	actor  string
	start  time.Time
}

// serveAction answers POST /v1/actions/<action>: the token, the rate
// limit and the body are checked here, in that order; the rest is
// respond's. Whatever happens is audited once.
func (s *Server) serveAction(w http.ResponseWriter, r *http.Request) {
	c := call{id: uuid.NewString(), action: respond.Action(r.PathValue("action")), actor: r.RemoteAddr, start: time.Now()}
	w.Header().Set("X-Request-Id", c.id)
	if err := s.authorize(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="falco-phantom-responder"`)
		s.refuse(r.Context(), w, c, &respond.Error{Code: respond.Unauthorized, Message: err.Error()})
		return
	}
	if wait := s.wait(); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.refuse(r.Context(), w, c, &respond.Error{Code: respond.RateLimited,
			Message: fmt.Sprintf("over the rate limit of %g requests per second (burst %d): come back in %d s", s.cfg.Rate, s.cfg.Burst, secs)})
		return
	}
	req, bad := decode(w, r)
	if bad != nil {
		s.refuse(r.Context(), w, c, bad)
		return
	}
	req.Action = c.action
	// The action finishes even if the caller goes away: half an isolation
	// helps nobody.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.ActionTimeout)
	defer cancel()
	res, err := s.responder.DoWithID(ctx, c.id, req, c.actor)
	if err != nil {
		s.answerError(w, c, err)
		return
	}
	s.answer(w, c, http.StatusOK, "ok", res)
}

// serveWrongMethod answers what is not a POST to an action.
func (s *Server) serveWrongMethod(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	c := call{id: uuid.NewString(), action: respond.Action(r.PathValue("action")), start: time.Now()}
	s.writeJSON(w, http.StatusMethodNotAllowed, errorBody(c.id, respond.InvalidInput, r.Method+" is not allowed: actions are asked for with POST"))
}

// authorize checks the bearer token, comparing in constant time. Its
// errors never repeat what was sent.
func (s *Server) authorize(r *http.Request) error {
	want, err := s.token.get()
	if err != nil {
		s.log.Error("every request is refused: the token cannot be read", "error", err)
		return errors.New("the responder cannot check tokens right now")
	}
	got, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return errors.New("no bearer token: send the header Authorization: Bearer <token>")
	}
	if !sameSecret(got, want) {
		return errors.New("the bearer token is not the responder's")
	}
	return nil
}

// wait takes a place in the rate limit; when there is none it returns
// how long until there is, and takes nothing.
func (s *Server) wait() time.Duration {
	now := time.Now()
	res := s.limiter.ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// decode reads the body strictly: at most MaxBody bytes, one JSON object,
// no field a Request does not have.
func decode(w http.ResponseWriter, r *http.Request) (respond.Request, *respond.Error) {
	var req respond.Request
	tooLarge := &respond.Error{Code: respond.TooLarge, Message: fmt.Sprintf("the body is larger than %d KiB", MaxBody>>10)}
	if r.ContentLength > MaxBody {
		return req, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return req, tooLarge
	case err != nil:
		return req, &respond.Error{Code: respond.InvalidInput, Message: "reading the body failed: " + err.Error(), Err: err}
	case len(bytes.TrimSpace(body)) == 0:
		return req, &respond.Error{Code: respond.InvalidInput, Message: "the body is empty: send the request as a JSON object (docs/respond.md)"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, &respond.Error{Code: respond.InvalidInput, Message: "the body is not a request: " + jsonMessage(err), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, &respond.Error{Code: respond.InvalidInput, Message: "the body holds more than one JSON value"}
	}
	return req, nil
}

// jsonMessage says what is wrong with a body without quoting much of it.
func jsonMessage(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s must be a %s, not a %s", typ.Field, typ.Type, typ.Value)
	}
	return err.Error() // e.g. json: unknown field "x"
}

// refuse answers a request refused before it reached an action, and
// audits it in the log.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, c call, e *respond.Error) {
	s.audit.Record(ctx, respond.Record{
		Time: c.start, RequestID: c.id, Actor: c.actor, Action: c.action,
		Outcome: respond.OutcomeRefused, Code: e.Code, Message: e.Message, Duration: time.Since(c.start),
	})
	s.answerError(w, c, e)
}

// answerError answers with err's status and typed error.
func (s *Server) answerError(w http.ResponseWriter, c call, err error) {
	code := respond.CodeOf(err)
	var e *respond.Error
	msg := "the action failed"
	if errors.As(err, &e) {
		msg = e.Message
	}
	s.answer(w, c, code.HTTPStatus(), string(code), errorBody(c.id, code, msg))
}

func (s *Server) answer(w http.ResponseWriter, c call, status int, code string, body any) {
	s.writeJSON(w, status, body)
	s.metrics.observe(c.action, code, time.Since(c.start))
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		s.log.Error("encode the answer", "error", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"the answer could not be encoded"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// apiError is the body of a refusal or failure (docs/respond.md).
type apiError struct {
	RequestID string `json:"request_id"`
	Error     struct {
		Code    respond.Code `json:"code"`
		Message string       `json:"message"`
	} `json:"error"`
}

func errorBody(id string, code respond.Code, msg string) apiError {
	var e apiError
	e.RequestID, e.Error.Code, e.Error.Message = id, code, msg
	return e
}
