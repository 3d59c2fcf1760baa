// Package httpstatus remembers what an HTTP handler answered, for logs and
// counts.
package httpstatus

import "net/http"

// Recorder is a ResponseWriter that remembers the status written through
// it (200 when the handler wrote a body without one).
type Recorder struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records code and passes it on.
func (r *Recorder) WriteHeader(code int) {
	if r.Status == 0 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records 200 when no status was written yet, and passes b on.
func (r *Recorder) Write(b []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
