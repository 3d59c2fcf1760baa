package install

// Component is one part of the pipeline, installed as one Helm release.
type Component string

// The components, by the names people see.
const (
	// NATS is the NATS server with JetStream (the upstream chart).
	NATS Component = "nats"
	// MockPhantom is the mock SOAR server (this project's chart).
	MockPhantom Component = "mockphantom"
	// Forwarder is the forwarder (this project's chart).
	Forwarder Component = "forwarder"
	// Responder is the service SOAR playbooks call to act on the cluster
	// (this project's chart).
	Responder Component = "responder"
	// Falco is Falco with falcosidekick (the upstream chart).
	Falco Component = "falco"
)

// Release names of the components.
const (
	ReleaseNATS      = "nats"
	ReleaseMock      = "mockphantom"
	ReleaseForwarder = "falco-phantom-forwarder"
	ReleaseResponder = "falco-phantom-responder"
	ReleaseFalco     = "falco"
)

// Ports the components serve on.
const (
	// ForwarderHealthPort serves the forwarder's /healthz, /readyz and /metrics.
	ForwarderHealthPort = 8081
	// MockPhantomPort serves the mock SOAR's REST API and web page.
	MockPhantomPort = 8080
	// ResponderPort serves the responder's HTTPS API, health and metrics.
	ResponderPort = 8443
)

// Components lists every component in install order: NATS first so that
// nothing waits for it, the responder after the forwarder, Falco last so
// that its first alerts find the pipeline ready. Uninstall goes the other
// way.
func Components() []Component { return []Component{NATS, MockPhantom, Forwarder, Responder, Falco} }

// Release is the component's Helm release, which is also the
// app.kubernetes.io/instance label of its pods.
func (c Component) Release() string {
	switch c {
	case NATS:
		return ReleaseNATS
	case MockPhantom:
		return ReleaseMock
	case Forwarder:
		return ReleaseForwarder
	case Responder:
		return ReleaseResponder
	case Falco:
		return ReleaseFalco
	}
	return string(c)
}

// Selector is the label selector of the component's pods.
func (c Component) Selector() string { return "app.kubernetes.io/instance=" + c.Release() }

// keepsData tells whether the component's release leaves volume claims
// behind (StatefulSet claims, the mock's kept data) for uninstall to delete.
func (c Component) keepsData() bool { return c == NATS || c == MockPhantom }
