package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
	"github.com/falco-phantom/kubectl-falco-phantom/internal/syncbuf"
)

// runtimeEnv are the Go runtime settings that pass through to the
// forwarder, for tuning runs.
var runtimeEnv = []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"}

// fwProcess is a forwarder child process.
type fwProcess struct {
	cmd  *exec.Cmd
	logs syncbuf.Buffer
}

// startForwarder runs the forwarder binary of h against NATS and the mock
// SOAR, and waits until it is ready. It runs with its defaults (grouping
// window, batch size, workers, requests in flight) unless the flags tuned
// them.
func (h *harness) startForwarder(ctx context.Context, natsURL, soarURL string) (*fwProcess, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, h.bin)
	cmd.Env = h.forwarderEnv(natsURL, soarURL, listen)
	p := &fwProcess{cmd: cmd}
	cmd.Stdout, cmd.Stderr = &p.logs, &p.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the forwarder: %w", err)
	}
	if err := poll.Until(ctx, 30*time.Second, pollInterval, func(ctx context.Context) error {
		return ready(ctx, "http://"+listen+"/readyz")
	}); err != nil {
		p.stop()
		return nil, fmt.Errorf("forwarder not ready: %w\n%s", err, p.logText())
	}
	return p, nil
}

// forwarderEnv is the forwarder's whole environment: where NATS and SOAR
// are, where it listens, the settings the flags tuned, and the Go runtime
// settings of this process's environment.
func (h *harness) forwarderEnv(natsURL, soarURL, listen string) []string {
	env := []string{
		"PHANTOM_BASE_URL=" + soarURL, "PHANTOM_USER=" + soarUser, "PHANTOM_PASSWORD=" + soarPassword,
		"NATS_URL=" + natsURL, "LISTEN_ADDR=" + listen, "LOG_LEVEL=warn",
	}
	env = append(env, h.o.tuned()...)
	for _, k := range runtimeEnv {
		if v := h.getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// freeAddr returns a local address no one listens on, for the forwarder.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ready returns nil when url answers 200.
func ready(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func (p *fwProcess) logText() string { return p.logs.String() }

// usage returns the forwarder's peak RSS and CPU time so far.
func (p *fwProcess) usage() (rss int64, cpu time.Duration, err error) {
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return rss, 0, err
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return rss, time.Duration(utime+stime) * time.Second / ticks, nil
}

// stop ends the forwarder with SIGTERM, as Kubernetes does.
func (p *fwProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
