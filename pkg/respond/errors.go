package respond

import (
	"errors"
	"net/http"
)

// Code says what kind of refusal or failure an Error is; the responder
// answers with it, and it sets the HTTP status.
type Code string

// The codes.
const (
	InvalidInput        Code = "invalid_input"
	Unauthorized        Code = "unauthorized"
	ActionNotAllowed    Code = "action_not_allowed"
	NamespaceNotAllowed Code = "namespace_not_allowed"
	UnknownAction       Code = "unknown_action"
	PodNotFound         Code = "pod_not_found"
	AmbiguousContainer  Code = "ambiguous_container"
	StandalonePod       Code = "standalone_pod"
	NotScheduled        Code = "not_scheduled"
	TooLarge            Code = "too_large"
	RateLimited         Code = "rate_limited"
	KubernetesError     Code = "kubernetes_error"
)

// HTTPStatus is the status the responder answers with.
func (c Code) HTTPStatus() int {
	switch c {
	case InvalidInput:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case ActionNotAllowed, NamespaceNotAllowed:
		return http.StatusForbidden
	case UnknownAction, PodNotFound:
		return http.StatusNotFound
	case AmbiguousContainer, StandalonePod, NotScheduled:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case RateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusBadGateway
}

// outcome is the audit outcome of a request that ended with c: refused
// (nothing was tried on the cluster's behalf) or failed.
func (c Code) outcome() Outcome {
	if c == KubernetesError {
		return OutcomeFailed
	}
	return OutcomeRefused
}

// Error is a refused or failed request. Message is one line for the
// requester, never with a secret in it.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// CodeOf is the code of err, KubernetesError when it is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return KubernetesError
}

func invalid(msg string) *Error { return &Error{Code: InvalidInput, Message: msg} }
