// Package falcostandin stands in for Falco's detection where Falco cannot
// run (a hostlab whose upstream folder holds no Falco). It is NOT a
// detection: it follows the API server's audit log, and for every
// `pods/exec` request that opens a shell with a terminal (what Falco's rule
// "Terminal shell in container" fires on: a shell binary, a TTY) it posts
// the alert Falco would emit for that shell to falcosidekick, the way
// Falco's HTTP output does. Everything after that hop is the real pipeline.
//
// Its command (cmd/falco-standin, image falco-phantom/falco-standin) runs in
// the Falco container of the real Falco chart's DaemonSet, configured by
// that chart's falco.yaml (see command.go).
//
// It lives in test/standin/falco; it is named falcostandin so that it reads
// apart from pkg/falco, the event model it uses.
package falcostandin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// AuditPolicy is an audit policy that records exec requests (and nothing
// else) with their URI, which carries the command and the tty flag.
const AuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    resources:
      - group: ""
        resources: ["pods/exec"]
  - level: None
`

// shellBinaries are the process names of Falco's shell_binaries list.
var shellBinaries = []string{"ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"}

// auditEvent holds the fields of an audit.k8s.io/v1 Event this package reads.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	ObjectRef  *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// Exec is a shell opened with a terminal, as read from the audit log.
type Exec struct {
	AuditID   string
	Namespace string
	Pod       string
	Container string
	Command   []string
	At        time.Time
}

// ParseExec reads one audit log line; ok is false unless it records an
// exec into a pod that runs a shell with a terminal.
func ParseExec(line []byte) (Exec, bool) {
	var ev auditEvent
	if json.Unmarshal(line, &ev) != nil || ev.ObjectRef == nil {
		return Exec{}, false
	}
	if ev.ObjectRef.Resource != "pods" || ev.ObjectRef.Subresource != "exec" {
		return Exec{}, false
	}
	if ev.ResponseStatus != nil && ev.ResponseStatus.Code >= 400 {
		return Exec{}, false
	}
	u, err := url.Parse(ev.RequestURI)
	if err != nil {
		return Exec{}, false
	}
	q := u.Query()
	cmd := q["command"]
	if q.Get("tty") != "true" || len(cmd) == 0 || !slices.Contains(shellBinaries, path.Base(cmd[0])) {
		return Exec{}, false
	}
	return Exec{
		AuditID: ev.AuditID, Namespace: ev.ObjectRef.Namespace, Pod: ev.ObjectRef.Name,
		Container: q.Get("container"), Command: cmd, At: ev.RequestReceivedTimestamp,
	}, true
}

// Alert is the alert Falco would raise for the exec into the container:
// the rule, its priority, the container (id as Falco shortens it) and the
// command line as Falco renders proc.cmdline (the process name, then the
// arguments).
func Alert(x Exec, c Container, hostname string) *falco.Event {
	image, tag := c.Image, ""
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image, tag = image[:i], image[i+1:]
	}
	cmdline := strings.Join(append([]string{path.Base(x.Command[0])}, x.Command[1:]...), " ")
	return falco.ShellEvent(falco.ShellSpec{
		Time: time.Now().UTC(), Hostname: hostname, ContainerID: c.ID[:min(12, len(c.ID))], ContainerName: c.Name,
		Image: image, ImageTag: tag, Namespace: x.Namespace, Pod: x.Pod, CommandLine: cmdline,
	})
}

// Watcher follows an audit log and posts an alert for every shell.
type Watcher struct {
	// LogPath is the API server's --audit-log-path.
	LogPath string
	// Containers finds the container of an exec.
	Containers Containers
	// SidekickURL is falcosidekick's address (Falco's http_output url).
	SidekickURL string
	Hostname    string
	Log         *slog.Logger
}

// Run follows the log from its current end until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	f, err := os.Open(w.LogPath)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	seen := map[string]bool{}
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		partial = append(partial, line...)
		if errors.Is(err, io.EOF) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		x, ok := ParseExec(partial)
		partial = nil
		if !ok || seen[x.AuditID] {
			continue
		}
		seen[x.AuditID] = true
		if err := w.alert(ctx, x); err != nil && w.Log != nil {
			w.Log.Warn("stand-in alert not posted", "pod", x.Pod, "error", err)
		}
	}
}

func (w *Watcher) alert(ctx context.Context, x Exec) error {
	c, err := w.Containers.Find(x.Namespace, x.Pod, x.Container)
	if err != nil {
		return err
	}
	body, err := json.Marshal(Alert(x, c, w.Hostname))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.SidekickURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("falcosidekick answered %s", resp.Status)
	}
	if w.Log != nil {
		w.Log.Info("stand-in alert posted", "pod", x.Namespace+"/"+x.Pod, "command", strings.Join(x.Command, " "))
	}
	return nil
}
