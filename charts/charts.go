// Package charts holds this project's own Helm charts, compiled into the
// plugin so that installing needs no chart repository.
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:falco-phantom-forwarder all:falco-phantom-responder all:mockphantom
var files embed.FS

// Forwarder is the chart of the forwarder.
func Forwarder() fs.FS { return sub("falco-phantom-forwarder") }

// Responder is the chart of the responder.
func Responder() fs.FS { return sub("falco-phantom-responder") }

// MockPhantom is the chart of the mock SOAR server.
func MockPhantom() fs.FS { return sub("mockphantom") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// The folders are embedded at build time; a failure is a build bug.
		panic(err)
	}
	return f
}
