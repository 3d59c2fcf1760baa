package install_test

import (
	"strings"
	"testing"

	cmdinstall "github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
)

func TestOriginalCommandLineMapsOntoInstall(t *testing.T) {
	t.Parallel()
	o, err := cmdinstall.PlaybookOptions(cmdinstall.PlaybookFlags{
		Playbook: "phantom", Runtime: install.RuntimeKubeless, NATSURL: "nats://nats.nats-io:4222",
		Env:    []string{"PHANTOM_USER=user", "PHANTOM_PASSWORD=xxxXxxxX", "PHANTOM_BASE_URL=https://phantom.example.com", "VERIFY_SSL=false"},
		Topics: []string{"falco.*.*", "falco.error.*"},
	}, "security")
	if err != nil {
		t.Fatal(err)
	}
	if o.Runtime != install.RuntimeKubeless || o.PhantomURL != "https://phantom.example.com" || o.PhantomAuth.User != "user" ||
		o.PhantomAuth.Password != "xxxXxxxX" || !o.InsecureSkipTLSVerify || !o.SkipFalco || o.NATSURL != "nats://nats.nats-io:4222" ||
		strings.Join(o.Subjects, " ") != "falco.*.* falco.error.*" || o.Namespace != "security" {
		t.Errorf("options = %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("mapped options do not validate: %v", err)
	}
}

func TestPlaybookErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    cmdinstall.PlaybookFlags
		want string
	}{
		{"other playbook", cmdinstall.PlaybookFlags{Playbook: "slack", Topics: []string{"falco.>"}}, "phantom playbook only"},
		{"no topic", cmdinstall.PlaybookFlags{Playbook: "phantom"}, "-t is required"},
		{"unknown setting", cmdinstall.PlaybookFlags{Playbook: "phantom", Topics: []string{"falco.>"}, Env: []string{"SLACK_WEBHOOK_URL=x"}}, "accepted: PHANTOM_BASE_URL"},
		{"not key=value", cmdinstall.PlaybookFlags{Playbook: "phantom", Topics: []string{"falco.>"}, Env: []string{"PHANTOM_USER=u", "PHANTOM_PASSWORD:hunter2"}}, "-e number 2: want KEY=VALUE"},
		{"bad verify", cmdinstall.PlaybookFlags{Playbook: "phantom", Topics: []string{"falco.>"}, Env: []string{"VERIFY_SSL=sometimes"}}, "VERIFY_SSL"},
		{"default runtime, two topics", cmdinstall.PlaybookFlags{Playbook: "phantom", Runtime: install.RuntimeDefault, Topics: []string{"a.b", "c.d"}}, "one subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.f.Runtime == "" {
				tt.f.Runtime = install.RuntimeKubeless
			}
			_, err := cmdinstall.PlaybookOptions(tt.f, "ns")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats a password: %v", err)
			}
		})
	}
}
