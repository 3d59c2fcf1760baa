package responder

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// bearer reads the token of an Authorization header "Bearer <token>"
// (the scheme in any case).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sameSecret compares in constant time, whatever the lengths: digests
// of equal size are compared, so neither the content nor the length of
// the token leaks through the time an answer takes.
func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && want != ""
}
