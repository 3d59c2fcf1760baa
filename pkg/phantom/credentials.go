package phantom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
)

// Auth holds SOAR credentials: a user and password for HTTP basic auth, or
// an automation token sent as "ph-auth-token". It never prints its values.
type Auth struct {
	User     string
	Password string
	Token    string
}

// String hides the secrets so that an Auth can never be logged by mistake.
func (a Auth) String() string {
	switch {
	case a.Token != "":
		return "token [redacted]"
	case a.User != "":
		return fmt.Sprintf("user %q, password [redacted]", a.User)
	default:
		return "no credentials"
	}
}

// GoString hides the secrets from %#v as well.
func (a Auth) GoString() string { return "phantom.Auth{" + a.String() + "}" }

// LogValue hides the secrets from log/slog.
func (a Auth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// Empty reports whether no credentials are set.
func (a Auth) Empty() bool { return a.Token == "" && a.User == "" && a.Password == "" }

func (a Auth) apply(req *http.Request) {
	if a.Token != "" {
		req.Header.Set("ph-auth-token", a.Token)
		return
	}
	if a.User != "" || a.Password != "" {
		req.SetBasicAuth(a.User, a.Password)
	}
}

// Credentials supplies the Auth for each request. Implementations may
// re-read their source so that rotated secrets take effect without restart.
type Credentials interface {
	Auth(ctx context.Context) (Auth, error)
}

// StaticCredentials are fixed credentials.
type StaticCredentials Auth

// Auth returns the credentials.
func (s StaticCredentials) Auth(context.Context) (Auth, error) { return Auth(s), nil }

// FileCredentials reads credentials from files, such as the keys of a
// Kubernetes Secret mounted as a volume. Files are re-read at most every
// Refresh (default 10 s), so a rotated Secret is picked up while running.
// Trailing newlines are removed. A field whose file is "" is taken from
// the matching Fallback field instead.
type FileCredentials struct {
	UserFile, PasswordFile, TokenFile string
	Fallback                          Auth
	Refresh                           time.Duration

	mu      sync.Mutex
	cached  Auth
	readAt  time.Time
	lastErr error
}

// Invalidate makes the next Auth read the files again. The client calls it
// when SOAR refuses the credentials, so a fixed Secret takes effect at once.
func (f *FileCredentials) Invalidate() {
	f.mu.Lock()
	f.readAt = time.Time{}
	f.mu.Unlock()
}

// Auth returns the credentials, reading the files when the cache is stale.
func (f *FileCredentials) Auth(context.Context) (Auth, error) {
	refresh := f.Refresh
	if refresh == 0 {
		refresh = 10 * time.Second
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.readAt.IsZero() && time.Since(f.readAt) < refresh {
		return f.cached, f.lastErr
	}
	a := f.Fallback
	var errs []error
	for _, item := range []struct {
		path string
		dst  *string
	}{{f.UserFile, &a.User}, {f.PasswordFile, &a.Password}, {f.TokenFile, &a.Token}} {
		if item.path == "" {
			continue
		}
		secret, err := input.SecretFile(item.path)
		if err != nil {
			// The error names the file, never its content.
			errs = append(errs, fmt.Errorf("read credentials file: %w", err))
			continue
		}
		*item.dst = secret
	}
	f.cached, f.lastErr, f.readAt = a, errors.Join(errs...), time.Now()
	return f.cached, f.lastErr
}
