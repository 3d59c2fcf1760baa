package mockphantom

import (
	"maps"
	"net/http"
	"sync"
)

// Stats counts requests since the server was created.
type Stats struct {
	// Requests is the number of HTTP requests answered, of any kind.
	Requests int64 `json:"requests"`
	// ByRoute counts requests by method and route pattern, such as
	// "POST /rest/artifact" or "GET /rest/container/{id}". Unknown paths
	// count under the catch-all patterns "/rest/" and "/"; requests
	// refused before routing (a body over the limit) as "unmatched".
	ByRoute map[string]int64 `json:"by_route"`
	// ByStatus counts requests by HTTP status; 499 counts requests the
	// client gave up on before an answer was written.
	ByStatus map[int]int64 `json:"by_status"`
	// ContainersCreated and ArtifactsCreated count stored objects;
	// Duplicates counts objects refused as duplicates.
	ContainersCreated int64 `json:"containers_created"`
	ArtifactsCreated  int64 `json:"artifacts_created"`
	Duplicates        int64 `json:"duplicates"`
	// FaultsInjected counts requests answered by an injected fault.
	FaultsInjected int64 `json:"faults_injected"`
	// InFlight is how many /rest requests are being worked on now (from
	// arrival, injected latency included, until the answer starts);
	// PeakInFlight the most at once.
	InFlight     int64 `json:"in_flight"`
	PeakInFlight int64 `json:"peak_in_flight"`
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	return s.stats.snapshot()
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

type statsCounter struct {
	mu sync.Mutex
	s  Stats
}

func (c *statsCounter) init() {
	c.s = Stats{ByRoute: map[string]int64{}, ByStatus: map[int]int64{}}
}

func (c *statsCounter) request(route string, status int) {
	c.mu.Lock()
	c.s.Requests++
	c.s.ByRoute[route]++
	c.s.ByStatus[status]++
	c.mu.Unlock()
}

func (c *statsCounter) stored(containers, artifacts, dups int64) {
	c.mu.Lock()
	c.s.ContainersCreated += containers
	c.s.ArtifactsCreated += artifacts
	c.s.Duplicates += dups
	c.mu.Unlock()
}

func (c *statsCounter) fault() {
	c.mu.Lock()
	c.s.FaultsInjected++
	c.mu.Unlock()
}

func (c *statsCounter) enter() {
	c.mu.Lock()
	c.s.InFlight++
	c.s.PeakInFlight = max(c.s.PeakInFlight, c.s.InFlight)
	c.mu.Unlock()
}

func (c *statsCounter) leave() {
	c.mu.Lock()
	c.s.InFlight--
	c.mu.Unlock()
}

func (c *statsCounter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.ByRoute = maps.Clone(c.s.ByRoute)
	out.ByStatus = maps.Clone(c.s.ByStatus)
	return out
}
