// Package version holds the build's version, set by the linker:
//
//	-ldflags "-X github.com/falco-phantom/kubectl-falco-phantom/pkg/version.Version=v0.1.0"
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is the release, or "dev" for a local build.
var Version = "dev"

// Info describes the build.
type Info struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Commit    string `json:"commit,omitempty"`
}

// Get returns the build's description.
func Get() Info {
	info := Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Commit = s.Value
			}
		}
	}
	return info
}
