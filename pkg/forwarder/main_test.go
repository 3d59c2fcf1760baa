package forwarder_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	cmdforwarder "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

// Tests that kill a forwarder with SIGKILL or look at its process list run
// it as a child process: the test binary runs itself again with childEnv
// set, and TestMain then runs the forwarder instead of the tests.
const (
	childEnv = "FALCO_PHANTOM_TEST_CHILD"
	// childCommand runs the real command line, exactly as
	// cmd/falco-phantom-forwarder does.
	childCommand = "command"
	// childConfig reads flags and environment the same way, and then sets
	// the JetStream AckWait from childAckWaitEnv, which the command line
	// does not offer: after a SIGKILL, the events the dead replica held
	// come back after AckWait (30 s by default), too long for a test.
	childConfig     = "config"
	childAckWaitEnv = "FALCO_PHANTOM_TEST_ACK_WAIT"
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childEnv); mode {
	case "":
		os.Exit(m.Run())
	case childCommand, childConfig:
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runChild(ctx, mode, os.Args[1:])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown child mode\n", childEnv, mode)
		os.Exit(2)
	}
}

func runChild(ctx context.Context, mode string, args []string) error {
	if mode == childCommand {
		return cmdforwarder.Run(ctx, args, genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, os.Getenv)
	}
	cfg := forwarder.Defaults()
	fs := pflag.NewFlagSet("forwarder", pflag.ContinueOnError)
	finish := cmdforwarder.BindFlags(&cfg, fs, os.Getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	if v := os.Getenv(childAckWaitEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %w", childAckWaitEnv, err)
		}
		cfg.NATS.AckWait = d
	}
	f, err := forwarder.New(cfg, slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	return f.Run(ctx)
}

// child is a forwarder running in a child process.
type child struct {
	cmd  *exec.Cmd
	logs *testkit.Buffer // stdout and stderr
	done chan struct{}
	err  error // set when done is closed
}

// startChild runs a forwarder child process in mode with env (KEY=value)
// added to a clean environment, and args as its command line.
func startChild(t *testing.T, mode string, env []string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{childEnv + "=" + mode, "PATH=" + os.Getenv("PATH"), "GORACE=" + os.Getenv("GORACE")}, env...)
	c := &child{cmd: cmd, logs: &testkit.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start forwarder child: %v", err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill(t)
		if t.Failed() {
			t.Logf("forwarder child %d logs:\n%s", cmd.Process.Pid, tail(c.logs.String(), 4000))
		}
	})
	return c
}

// kill ends the child with SIGKILL, as the kernel's OOM killer or a node
// failure would, and waits for it to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		return
	default:
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL forwarder child: %v", err)
	}
	<-c.done
}

// exited waits for the child to end by itself and returns its error.
func (c *child) exited(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		t.Fatalf("forwarder child still runs after %s", timeout)
		return nil
	}
}

// peakRSS returns the child's peak resident memory (VmHWM) in bytes.
func (c *child) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
