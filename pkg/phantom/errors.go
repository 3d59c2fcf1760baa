package phantom

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind says what an error means for whoever sends data to SOAR.
type Kind int

const (
	// KindTransient: SOAR is down, slow, overloaded or the network failed.
	// Retrying the same request later can succeed.
	KindTransient Kind = iota + 1
	// KindAuth: the credentials were refused (401/403). Nothing succeeds
	// until they are fixed; retrying the same data is right once they are.
	KindAuth
	// KindConfig: the request names something SOAR does not have (an unknown
	// label or severity), or TLS verification failed. Like KindAuth it
	// affects every request until an operator fixes the set-up.
	KindConfig
	// KindRejected: SOAR refused this particular object (bad field, too
	// large). Retrying the same data cannot help.
	KindRejected
	// KindNotFound: the object referred to does not exist (404), e.g. a
	// container that was deleted.
	KindNotFound
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindAuth:
		return "auth"
	case KindConfig:
		return "config"
	case KindRejected:
		return "rejected"
	case KindNotFound:
		return "not_found"
	default:
		return "unknown"
	}
}

// Error is an error from SOAR or from the way to it.
type Error struct {
	// Op is the request, e.g. "POST /rest/container".
	Op string
	// Status is the HTTP status, 0 when no answer came.
	Status int
	Kind   Kind
	// Message is SOAR's own message, when it sent one.
	Message string
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("phantom: ")
	b.WriteString(e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if hint := e.Hint(); hint != "" {
		b.WriteString(" (")
		b.WriteString(hint)
		b.WriteString(")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether sending the same request again may succeed
// without anybody changing anything.
func (e *Error) Retryable() bool { return e.Kind == KindTransient }

// Hint says what an operator should fix, for the kinds that need one.
func (e *Error) Hint() string {
	switch e.Kind {
	case KindAuth:
		return "check PHANTOM_USER/PHANTOM_PASSWORD or PHANTOM_TOKEN, and that the user may write containers"
	case KindConfig:
		switch {
		case strings.Contains(e.Message, "is not a known label"):
			return "create the label in SOAR (Administration > Event Settings > Label Settings) or set PHANTOM_LABEL to an existing one"
		case strings.Contains(e.Message, "Severity matching query does not exist"):
			return "the severity is not defined in SOAR (Administration > Event Settings > Severity)"
		case isTLSError(e.Err):
			return "SOAR's certificate is not trusted: set PHANTOM_CA_FILE to its CA, or VERIFY_SSL=false to skip verification"
		}
	}
	return ""
}

// KindOf returns the kind of err if it is (or wraps) an *Error, and
// KindTransient otherwise: an unknown failure is worth another try.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return KindTransient
}

// classify maps an HTTP answer to a Kind.
func classify(status int, message string) Kind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return KindAuth
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return KindTransient
	case strings.Contains(message, "is not a known label") || strings.Contains(message, "Severity matching query does not exist"):
		return KindConfig
	case status >= 400:
		return KindRejected
	default:
		// A 2xx or 3xx carrying "failed": nothing says it is permanent.
		return KindTransient
	}
}

func isTLSError(err error) bool {
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verify)
}
