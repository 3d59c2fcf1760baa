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
	events    []*falco.Event
	bodies    [][]byte
	incidents int
}

// newWorkload makes n shell alerts raised by the given number of
// incidents (containers), interleaved: alert i belongs to incident
// i % incidents, so with many incidents consecutive alerts go to
// different cases. Every alert is unique.
func newWorkload(n, incidents int, start time.Time) *workload {
	w := &workload{incidents: incidents}
	for i := range n {
		w.add(shellAlert(i, incidentOf(i, incidents), start.Add(time.Duration(i)*100*time.Microsecond)))
	}
	return w
}

// head is the workload of the first n alerts of w (all of them when it
// holds fewer).
func (w *workload) head(n int) *workload {
	n = min(n, len(w.events))
	return &workload{events: w.events[:n], bodies: w.bodies[:n], incidents: w.incidents}
}

func (w *workload) add(ev *falco.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // a ShellEvent always marshals
	}
	w.events, w.bodies = append(w.events, ev), append(w.bodies, b)
}

// incidentOf is the incident of the i-th alert when that many incidents
// interleave.
func incidentOf(i, incidents int) int { return i % incidents }

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
