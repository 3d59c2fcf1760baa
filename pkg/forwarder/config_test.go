package forwarder

import (
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://nats:4222":                           "nats://nats:4222",
		"nats://user:s3cret@nats:4222":               "nats://redacted@nats:4222",
		"user:s3cret@nats:4222":                      "redacted@nats:4222",
		"nats://u:s3%zz@nats:4222":                   "nats://redacted@nats:4222",
		"nats://u:s3/cr@t@nats:4222":                 "nats://redacted@nats:4222",
		"tls://tok3n@a:4222, nats://u:s3cret@b:4222": "tls://redacted@a:4222,nats://redacted@b:4222",
		"nats://a:4222,b:4222":                       "nats://a:4222,b:4222",
		// Commas inside a password are not list separators.
		"nats://user:s3,cret@nats:4222":           "nats://redacted@nats:4222",
		"nats://user:1234,5678@nats:4222":         "nats://redacted@nats:4222",
		"nats://a:4222,nats://user:s3,cr,et@b:42": "nats://a:4222,nats://redacted@b:42",
		"user:s3,cret@nats:4222":                  "redacted@nats:4222",
	} {
		got := RedactURL(in)
		if got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
