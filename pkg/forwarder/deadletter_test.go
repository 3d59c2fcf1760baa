package forwarder_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	cmdforwarder "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

// A dead-letter stream that refuses writes (here full, with limits an
// operator set to discard new messages) must not hold back valid alerts:
// they flow, while the dead letter is held and retried, and readiness and
// metrics say so. Once the stream takes writes again, the dead letter is
// stored and nothing stays held.
func TestFullDeadLetterStreamDoesNotStopDelivery(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	nc := connect(t, n.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	defaults := forwarder.Defaults().NATS
	dlCfg := jetstream.StreamConfig{
		Name: defaults.DeadLetterStream, Subjects: []string{defaults.DeadLetterSubject + ".>"},
		MaxMsgs: 1, Discard: jetstream.DiscardNew,
	}
	if _, err := js.CreateStream(ctx, dlCfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, defaults.DeadLetterSubject+".invalid_event", []byte("an older dead letter")); err != nil {
		t.Fatal(err)
	}
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))

	if err := nc.Publish("falco.notice.garbage", []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	good := newStream("flows", 10, 20, time.Now().UTC(), 10*time.Millisecond)
	good.publishAll(t, nc, 0, len(good.events))
	checkDelivered(t, soarClient(t, soar.URL), good, 30*time.Second)

	testkit.WaitFor(t, 10*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricDeadHeld, ""); got != 1 {
			return fmt.Errorf("%s = %v, want 1", forwarder.MetricDeadHeld, got)
		}
		if err := fw.fw.Ready(); err == nil || !strings.Contains(err.Error(), "1 dead letter(s) held") {
			return fmt.Errorf("Ready() = %v, want it to say a dead letter is held", err)
		}
		return nil
	})
	if got := metric(t, fw.fw, forwarder.MetricDeadLettered, ""); got != 0 {
		t.Errorf("%s = %v while the stream refuses, want 0", forwarder.MetricDeadLettered, got)
	}

	dlCfg.MaxMsgs = -1
	if _, err := js.UpdateStream(ctx, dlCfg); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 40*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricDeadLettered, `reason="invalid_event"`); got != 1 {
			return fmt.Errorf("%s = %v, want 1", forwarder.MetricDeadLettered, got)
		}
		if got := metric(t, fw.fw, forwarder.MetricDeadHeld, ""); got != 0 {
			return fmt.Errorf("%s = %v, want 0", forwarder.MetricDeadHeld, got)
		}
		return fw.fw.Ready()
	})
	s, err := js.Stream(ctx, defaults.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, defaults.DeadLetterSubject+".invalid_event")
	if err != nil || string(m.Data) != "not an event" {
		t.Fatalf("last dead letter = %v, %v; want the invalid event", m, err)
	}
}

// deadLettersOf publishes events SOAR refuses (larger than the mock
// accepts) on the given subjects, and waits until the forwarder has
// dead-lettered them.
func deadLettersOf(t *testing.T, fw *running, nc *nats.Conn, subjects []string) {
	t.Helper()
	for i, subject := range subjects {
		ev := shell("d1d1d1d1d1d1", fmt.Sprintf("refused-%d", i), time.Now().UTC().Add(time.Duration(i)*time.Millisecond))
		ev.Output = strings.Repeat("y", 70_000)
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(subject, b); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 20*time.Second, func() error {
		if got := metric(t, fw.fw, forwarder.MetricDeadLettered, `reason="phantom_rejected"`); got != float64(len(subjects)) {
			return fmt.Errorf("phantom_rejected dead letters = %v, want %d", got, len(subjects))
		}
		return nil
	})
}

// One dead letter that cannot be replayed (here one written by an older
// version, whose subject header was cut) is skipped and reported; the
// replay goes on with the others, among them one whose original subject is
// longer than 256 bytes, kept intact. A second replay with nothing left to
// replay succeeds at once.
func TestReplaySkipsWhatItCannotReplayAndGoesOn(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{MaxBodyBytes: 64 << 10})
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	defaults := forwarder.Defaults().NATS

	// First in the stream: a dead letter whose subject was cut.
	old := nats.NewMsg(defaults.DeadLetterSubject + ".phantom_rejected")
	old.Header.Set(forwarder.HeaderReason, forwarder.ReasonPhantomRejected)
	old.Header.Set(forwarder.HeaderSubject, "falco.notice."+strings.Repeat("a", 243)+"…[57 bytes cut]")
	old.Data = []byte(`{"rule":"r","priority":"Notice","time":"2026-11-27T01:00:00Z"}`)
	testkit.WaitFor(t, 10*time.Second, func() error { _, err := js.PublishMsg(ctx, old); return err })
	long := "falco.notice." + strings.Repeat("very_long_rule_name_", 15)
	deadLettersOf(t, fw, nc, []string{"falco.notice.terminal_shell_in_container", long})

	// SOAR takes larger requests now.
	soar.Stop()
	soarURL := restartAt(t, soar.URL, mockphantom.Config{DBPath: soar.DBPath})
	var out bytes.Buffer
	env := map[string]string{"NATS_URL": n.URL()}
	if err := cmdforwarder.Run(ctx, []string{"replay-dead-letters"}, genericiooptions.IOStreams{Out: &out, ErrOut: &out}, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if got := out.String(); !strings.Contains(got, "replayed 2, skipped 1") || !strings.Contains(got, "skipped dead letter 1 (phantom_rejected): the original subject is not a valid NATS subject") {
		t.Errorf("replay printed %q; want 2 replayed and the cut one skipped with its reason", got)
	}
	waitStored(t, soarClient(t, soarURL), []string{"refused-0", "refused-1"}, 20*time.Second)

	begin := time.Now()
	out.Reset()
	if err := cmdforwarder.Run(ctx, []string{"replay-dead-letters"}, genericiooptions.IOStreams{Out: &out, ErrOut: &out}, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("second replay: %v\n%s", err, out.String())
	}
	if took := time.Since(begin); took > 3*time.Second || !strings.Contains(out.String(), "replayed 0, skipped 1") {
		t.Errorf("second replay printed %q in %s; want nothing replayed, the cut one skipped again, at once", out.String(), took)
	}
	s, err := js.Stream(ctx, defaults.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("dead-letter stream: %v, %v; want only the skipped one left", info, err)
	}
}

// Replaying when every dead letter was replayed before, the last one of the
// stream among them, is a success that does nothing.
func TestReplayWithNothingLeft(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	soar := testkit.StartPhantom(t, mockphantom.Config{MaxBodyBytes: 64 << 10})
	fw := startForwarder(t, baseConfig(n.URL(), soar.URL))
	nc := connect(t, n.URL())
	deadLettersOf(t, fw, nc, []string{"falco.notice.terminal_shell_in_container"})
	ctx := t.Context()
	env := map[string]string{"NATS_URL": n.URL()}
	replay := func(args ...string) (string, time.Duration, error) {
		var out bytes.Buffer
		begin := time.Now()
		err := cmdforwarder.Run(ctx, append([]string{"replay-dead-letters"}, args...), genericiooptions.IOStreams{Out: &out, ErrOut: &out}, func(k string) string { return env[k] })
		return out.String(), time.Since(begin), err
	}
	// Only other reasons: the one dead letter stays.
	if out, _, err := replay("--reason", "invalid_event"); err != nil || !strings.Contains(out, "left 1") {
		t.Fatalf("replay --reason invalid_event = %q, %v", out, err)
	}
	soar.Stop()
	restartAt(t, soar.URL, mockphantom.Config{DBPath: soar.DBPath})
	if out, _, err := replay(); err != nil || !strings.Contains(out, "replayed 1") {
		t.Fatalf("replay = %q, %v", out, err)
	}
	for range 2 {
		out, took, err := replay()
		if err != nil || !strings.Contains(out, "nothing to replay") || took > 3*time.Second {
			t.Errorf("replay with nothing left = %q, %v after %s; want success at once", out, err, took)
		}
	}
}
