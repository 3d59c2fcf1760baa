package forwarder_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	cmdforwarder "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

// TestCredentialsNeverLeak runs the real forwarder command with secrets in
// its environment (a SOAR token, a SOAR password that is refused, a NATS
// password in NATS_URL, a SOAR URL with a password in it) and checks that
// none of them shows in the process list, the logs, /metrics, /readyz or
// the error a refused start prints.
func TestCredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	const (
		natsSecret    = "nats-secret-7f3a9c"
		wrongPassword = "refused-password-52be1d"
		urlSecret     = "url-secret-c81e0d"
	)
	secrets := []string{testkit.Token, testkit.Password, natsSecret, wrongPassword, urlSecret}
	natsURL := strings.Replace(n.URL(), "nats://", "nats://falco:"+natsSecret+"@", 1)

	goodPort, badPort := freePort(t), freePort(t)
	good := startChild(t, childCommand, []string{
		"PHANTOM_BASE_URL=" + soar.URL, "PHANTOM_TOKEN=" + testkit.Token, "NATS_URL=" + natsURL,
		"LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(goodPort), "LOG_LEVEL=debug",
	}, "--drain-timeout=1s")
	bad := startChild(t, childCommand, []string{
		"PHANTOM_BASE_URL=" + soar.URL, "PHANTOM_USER=" + testkit.User, "PHANTOM_PASSWORD=" + wrongPassword,
		"NATS_URL=" + natsURL, "NATS_CONSUMER=refused", "LISTEN_ADDR=127.0.0.1:" + strconv.Itoa(badPort), "LOG_LEVEL=debug",
	}, "--drain-timeout=1s")
	goodURL, badURL := fmt.Sprintf("http://127.0.0.1:%d", goodPort), fmt.Sprintf("http://127.0.0.1:%d", badPort)

	testkit.WaitFor(t, 20*time.Second, func() error { return getStatus(goodURL+"/readyz", http.StatusOK) })
	publish(t, connect(t, n.URL()), shell("5ec7e75ec7e7", "secret-test", time.Now().UTC()))
	waitStored(t, soarClient(t, soar.URL), []string{"secret-test"}, 15*time.Second)
	testkit.WaitFor(t, 20*time.Second, func() error {
		if !strings.Contains(bad.logs.String(), "HTTP 401") {
			return fmt.Errorf("the refused forwarder has not logged SOAR's refusal yet")
		}
		return getStatus(badURL+"/readyz", http.StatusServiceUnavailable)
	})

	// A SOAR URL with credentials in it is refused at start.
	refused := startChild(t, childCommand, []string{
		"PHANTOM_BASE_URL=http://admin:" + urlSecret + "@127.0.0.1:1", "PHANTOM_PASSWORD=" + testkit.Password,
		"NATS_URL=" + natsURL, "LISTEN_ADDR=",
	})
	if err := refused.exited(t, 20*time.Second); err == nil {
		t.Error("the forwarder started with credentials in PHANTOM_BASE_URL")
	}
	if !strings.Contains(refused.logs.String(), "must not contain credentials") {
		t.Errorf("the refusal does not say why:\n%s", refused.logs.String())
	}

	places := map[string]string{
		"process list":                  processList(t),
		"refused start's output":        refused.logs.String(),
		"working forwarder's /metrics":  get(t, goodURL+"/metrics"),
		"working forwarder's /readyz":   get(t, goodURL+"/readyz"),
		"refused forwarder's /metrics":  get(t, badURL+"/metrics"),
		"refused forwarder's /readyz":   get(t, badURL+"/readyz"),
		"working forwarder's log":       "",
		"refused forwarder's log":       "",
		"forwarder command's arguments": strings.Join(good.cmd.Args, " ") + strings.Join(bad.cmd.Args, " "),
	}
	for _, c := range []*child{good, bad} {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := c.exited(t, 30*time.Second); err != nil {
			t.Errorf("forwarder after SIGTERM: %v", err)
		}
	}
	places["working forwarder's log"], places["refused forwarder's log"] = good.logs.String(), bad.logs.String()
	for place, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s shows the secret %q", place, s)
			}
		}
	}
	if !strings.Contains(places["refused forwarder's /readyz"], "PHANTOM_PASSWORD") {
		t.Errorf("/readyz of the refused forwarder does not name the setting to fix: %s", places["refused forwarder's /readyz"])
	}
	if !strings.Contains(good.logs.String(), "nats://redacted@") {
		t.Errorf("the log does not show the NATS URL with its password redacted:\n%s", tail(good.logs.String(), 2000))
	}
}

// processList returns what `ps -eo args` shows: every process's command
// line, read from /proc as ps does (and from ps itself when installed).
func processList(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(cmdlines) == 0 {
		t.Fatalf("cannot list processes in /proc: %v", err)
	}
	for _, f := range cmdlines {
		args, err := os.ReadFile(f)
		if err != nil {
			continue // the process ended
		}
		b.Write(args)
		b.WriteByte('\n')
	}
	if out, err := exec.Command("ps", "-eo", "args").Output(); err == nil {
		b.Write(out)
	}
	return b.String()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getStatus(url string, want int) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s = %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return nil
}

// TestURLSecretsNeverInErrors gives the forwarder command SOAR and NATS
// URLs with credentials in every shape a user may write them, including
// those url.Parse does not read as userinfo, and checks that the error and
// the logs never show the secret or a part of it.
func TestURLSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	const soarOK, natsOK = "https://soar.example.com", "nats://127.0.0.1:1"
	tests := []struct{ soar, nats string }{
		{"admin:S3CR3T@soar.example.com", natsOK},
		{"https:admin:S3CR3T@soar.example.com", natsOK},
		{"http:/admin:S3CR3T@soar.example.com", natsOK},
		{"https://admin:S3CR3T%zz@soar.example.com", natsOK},
		{"https://soar.example.com/?token=S3CR3T", natsOK},
		{"https://soar.example.com/rest?ph-auth-token=S3CR3T&x=1", natsOK},
		{"https://soar.example.com/#S3CR3T", natsOK},
		{soarOK, "nats://falco:S3,CR3T@127.0.0.1:1"},
		{soarOK, "nats://falco:S3CR3T%zz@127.0.0.1:1"},
		{soarOK, "nats://falco:S3 CR3T@127.0.0.1:1"},
		{soarOK, "nats://127.0.0.1:1,nats://falco:S3,CR3T@127.0.0.2:1"},
	}
	for _, tt := range tests {
		env := map[string]string{"PHANTOM_BASE_URL": tt.soar, "PHANTOM_TOKEN": "t", "NATS_URL": tt.nats, "LISTEN_ADDR": ""}
		var out, logs strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cmdforwarder.Run(ctx, nil, genericiooptions.IOStreams{Out: &out, ErrOut: &logs}, func(k string) string { return env[k] })
		cancel()
		if err == nil {
			t.Errorf("SOAR %q, NATS %q: the forwarder ran", tt.soar, tt.nats)
			continue
		}
		for _, leak := range []string{"S3CR3T", "CR3T", ":S3", "S3 "} {
			for where, text := range map[string]string{"error": err.Error(), "log": logs.String(), "output": out.String()} {
				if strings.Contains(text, leak) {
					t.Errorf("SOAR %q, NATS %q: the %s shows %q: %s", tt.soar, tt.nats, where, leak, text)
				}
			}
		}
	}
}
