package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// workload is a set of alerts ready to publish.
type workload struct {
	events  []*falco.Event
	bodies  [][]byte
	perCase int
}

// newWorkload makes n shell alerts: with perIncident > 1, activeIncidents
// containers at a time raise perIncident alerts each, interleaved; with 1,
// every alert comes from a container of its own. Every alert is unique.
func newWorkload(n, perIncident int, start time.Time) *workload {
	w := &workload{perCase: perIncident}
	for i := range n {
		w.add(shellAlert(i, incidentOf(i, perIncident), start.Add(time.Duration(i)*100*time.Microsecond)))
	}
	return w
}

// head is the workload of the first n alerts of w (all of them when it
// holds fewer).
func (w *workload) head(n int) *workload {
	n = min(n, len(w.events))
	return &workload{events: w.events[:n], bodies: w.bodies[:n], perCase: w.perCase}
}

func (w *workload) add(ev *falco.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // a ShellEvent always marshals
	}
	w.events, w.bodies = append(w.events, ev), append(w.bodies, b)
}

// incidentOf is the incident of the i-th alert.
func incidentOf(i, perIncident int) int {
	if perIncident <= 1 {
		return i
	}
	block := perIncident * activeIncidents
	return (i/block)*activeIncidents + i%activeIncidents
}

// shellAlert is the i-th alert, raised in the container of incident inc.
func shellAlert(i, inc int, at time.Time) *falco.Event {
	apps := []string{"web", "api", "cart", "search", "auth", "billing", "queue"}
	app := apps[inc%len(apps)]
	return falco.ShellEvent(falco.ShellSpec{
		Time: at, Hostname: fmt.Sprintf("node-%d", inc%5), ContainerID: fmt.Sprintf("%012x", 0xc0000000+inc),
		ContainerName: app, Image: "registry.example.com/shop/" + app, ImageTag: "1." + strconv.Itoa(inc%30),
		Namespace: "shop", Pod: fmt.Sprintf("%s-7d9f8c6b5-%05d", app, inc),
		CommandLine: fmt.Sprintf("sh -c echo bench-%d; cat /etc/hostname", i),
	})
}
