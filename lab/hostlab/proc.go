package hostlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/poll"
)

// daemon is one long-running process of the lab.
type daemon struct {
	name string
	path string
	args []string
	env  []string
}

// pidRecord is what a pid file holds: enough to recognise the process
// again after the program that started it is gone, and never to signal a
// process that merely reuses the number.
type pidRecord struct {
	PID int `json:"pid"`
	// Start is the process start time in clock ticks since boot
	// (/proc/PID/stat field 22).
	Start uint64 `json:"start"`
	Path  string `json:"path"`
}

// started is a daemon started by this process; exited is closed once it
// is gone and reaped.
type started struct {
	name   string
	pid    int
	exited chan struct{}
	err    error
}

// start runs d in a session of its own (so that a terminal's Ctrl-C does
// not reach it), with its output appended to its log file, and records its
// pid. The process outlives the caller; stop or Down ends it.
func start(l layout, d daemon) (*started, error) {
	logFile, err := os.OpenFile(l.log(d.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	fmt.Fprintf(logFile, "=== hostlab: %s %s %s\n", time.Now().UTC().Format(time.RFC3339), d.path, strings.Join(d.args, " "))
	cmd := exec.Command(d.path, d.args...)
	cmd.Env = append(os.Environ(), d.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = l.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	s := &started{name: d.name, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	rec := pidRecord{PID: s.pid, Path: d.path}
	rec.Start, _ = procStart(s.pid)
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(l.pidFile(d.name), b, 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("record pid of %s: %w", d.name, err)
	}
	return s, nil
}

// procStart returns a process's start time in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); the start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// procState returns the state letter of a process (R, S, Z...), or ""
// when it does not exist.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// alive reports whether the recorded process still runs (a zombie does
// not count).
func (r pidRecord) alive() bool {
	st := procState(r.PID)
	if st == "" || st == "Z" || st == "X" {
		return false
	}
	start, err := procStart(r.PID)
	return err == nil && (r.Start == 0 || start == r.Start)
}

func readPid(file string) (pidRecord, error) {
	var r pidRecord
	b, err := os.ReadFile(file)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("pid file %s: %w", file, err)
	}
	return r, nil
}

// stopRecorded stops the process recorded in the pid file of name: SIGTERM,
// then SIGKILL after grace. A missing pid file or a process already gone
// is no error.
func stopRecorded(ctx context.Context, l layout, name string, grace time.Duration) error {
	file := l.pidFile(name)
	r, err := readPid(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		_ = os.Remove(file)
		return err
	}
	if err := stopPID(ctx, r, grace); err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", name, r.PID, err)
	}
	return os.Remove(file)
}

// stopPID signals a recorded process and waits for it to be gone.
func stopPID(ctx context.Context, r pidRecord, grace time.Duration) error {
	if !r.alive() {
		return nil
	}
	_ = syscall.Kill(r.PID, syscall.SIGTERM)
	if waitGone(ctx, r, grace) {
		return nil
	}
	_ = syscall.Kill(r.PID, syscall.SIGKILL)
	if waitGone(ctx, r, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("still running 10s after SIGKILL (state %s)", procState(r.PID))
}

// waitGone waits up to d for the recorded process to be gone, and reports
// whether it is.
func waitGone(ctx context.Context, r pidRecord, d time.Duration) bool {
	err := poll.Until(ctx, d, 50*time.Millisecond, func(context.Context) error {
		if r.alive() {
			return errors.New("still running")
		}
		return nil
	})
	return err == nil || !r.alive()
}

// recordedNames lists the daemons that have a pid file.
func recordedNames(l layout) []string {
	entries, _ := os.ReadDir(l.pids())
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".pid"); ok {
			out = append(out, name)
		}
	}
	return out
}

// processesMentioning returns the processes whose command line contains
// s (a path below the lab folder, so only the lab's own processes match),
// except this process.
func processesMentioning(s string) []pidRecord {
	entries, _ := os.ReadDir("/proc")
	var out []pidRecord
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		start, err := procStart(pid)
		if err != nil {
			continue
		}
		out = append(out, pidRecord{PID: pid, Start: start, Path: string(bytes.SplitN(cmdline, []byte{0}, 2)[0])})
	}
	return out
}

// logTail returns the last n lines of a daemon's log, for error messages.
func logTail(l layout, name string, n int) string {
	b, err := os.ReadFile(l.log(name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
