package httpstatus

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecorder(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		handler func(w http.ResponseWriter)
		want    int
	}{
		"explicit": {func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot); w.WriteHeader(http.StatusOK) }, http.StatusTeapot},
		"implicit": {func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, http.StatusOK},
		"nothing":  {func(http.ResponseWriter) {}, 0},
	} {
		rec := &Recorder{ResponseWriter: httptest.NewRecorder()}
		tt.handler(rec)
		if rec.Status != tt.want {
			t.Errorf("%s: Status = %d, want %d", name, rec.Status, tt.want)
		}
	}
}
