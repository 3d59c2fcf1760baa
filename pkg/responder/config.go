package responder

import (
	"errors"
	"fmt"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Config is everything the responder needs. Secrets (the bearer token,
// the TLS key, SOAR's credentials) are read from files or the
// environment, never from flags.
type Config struct {
	// Listen is the HTTPS address, e.g. ":8443".
	Listen string
	// CertFile and KeyFile are the server's certificate and key (PEM),
	// re-read when they change.
	CertFile, KeyFile string
	// TokenFile holds the bearer token callers must send; re-read when it
	// changes.
	TokenFile string
	// Policy says where and what the responder may do.
	Policy respond.Policy
	// Rate is the requests per second allowed on average, Burst how many
	// at once.
	Rate  float64
	Burst int
	// SOAR is where the outcome of requests naming a case is noted; an
	// empty BaseURL notes nothing.
	SOAR SOARConfig
	// ActionTimeout bounds one action; it is not cut short when the
	// caller goes away.
	ActionTimeout time.Duration
	// ShutdownTimeout bounds how long a stop waits for requests in flight.
	ShutdownTimeout time.Duration
}

// SOARConfig says how to reach SOAR, as the forwarder does.
type SOARConfig struct {
	BaseURL      string
	Auth         phantom.Auth // from PHANTOM_USER, PHANTOM_PASSWORD, PHANTOM_TOKEN
	UserFile     string
	PasswordFile string
	TokenFile    string
	CAFile       string
	VerifySSL    bool
	Timeout      time.Duration
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		Listen: ":8443", Rate: 5, Burst: 20,
		Policy:        respond.Policy{Actions: respond.DefaultActions()},
		SOAR:          SOARConfig{VerifySSL: true, Timeout: 10 * time.Second},
		ActionTimeout: 30 * time.Second, ShutdownTimeout: 10 * time.Second,
	}
}

// Validate checks the configuration and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("no address to listen on"))
	}
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("the responder serves HTTPS only: give the certificate and key files"))
	}
	if c.TokenFile == "" {
		errs = append(errs, errors.New("no token file: callers must send the bearer token it holds"))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Policy.Actions == nil {
		// nil would allow every action: the responder says which.
		errs = append(errs, errors.New("no action allowed: list the actions"))
	}
	if c.Rate <= 0 || c.Burst < 1 {
		errs = append(errs, fmt.Errorf("rate %g/s with burst %d: both must be positive", c.Rate, c.Burst))
	}
	if s := c.SOAR; s.BaseURL != "" {
		if _, err := phantom.ParseBaseURL(s.BaseURL); err != nil {
			errs = append(errs, err)
		}
		if s.Auth.Empty() && s.UserFile == "" && s.PasswordFile == "" && s.TokenFile == "" {
			errs = append(errs, errors.New("no SOAR credentials: set PHANTOM_TOKEN, or PHANTOM_USER and PHANTOM_PASSWORD (or the *_FILE variants)"))
		}
	}
	return errors.Join(errs...)
}

// soarClient builds the client the notes are written with; nil without a
// SOAR.
func (s SOARConfig) client() (*phantom.Client, error) {
	if s.BaseURL == "" {
		return nil, nil
	}
	var creds phantom.Credentials = phantom.StaticCredentials(s.Auth)
	if s.UserFile != "" || s.PasswordFile != "" || s.TokenFile != "" {
		creds = &phantom.FileCredentials{UserFile: s.UserFile, PasswordFile: s.PasswordFile, TokenFile: s.TokenFile, Fallback: s.Auth}
	}
	c, err := phantom.New(phantom.Config{
		BaseURL: s.BaseURL, Credentials: creds, InsecureSkipVerify: !s.VerifySSL, CAFile: s.CAFile,
		Timeout: s.Timeout, UserAgent: "falco-phantom-responder", MaxConns: 4,
	})
	if err != nil {
		return nil, fmt.Errorf("SOAR client: %w", err)
	}
	return c, nil
}
