// Package e2e holds the end-to-end tests of the plugin on a real
// single-node Kubernetes cluster (lab/hostlab) on this machine, with the
// upstream NATS and Falco charts, falcosidekick and Falco from the folder
// next to the checkout (../shared/upstream): install with --wait, status,
// an alert through NATS, the forwarder and the mock SOAR, a re-install,
// uninstall, and test-shell on Falco's own detection of a shell. Where the
// folder holds no Falco, the Falco stand-in (test/standin/falco) runs in
// the Falco chart's DaemonSet instead, and the suite's log says so.
//
// The tests carry the build tag e2e, so that "go test ./..." never starts
// a cluster. They need root, the Debian packages the hostlab needs and the
// upstream folder; without them they skip and say why, unless
// FALCO_PHANTOM_REQUIRE_HOSTLAB=1 is set (CI sets it), in which case they
// fail. Run them with
//
//	make e2e
//
// which builds the Kubernetes binaries first (build/tools/build.sh) and runs
//
//	FALCO_PHANTOM_TOOLS_DIR=<folder> go test -tags e2e -v ./test/e2e
//
// Other variables: FALCO_PHANTOM_HOSTLAB_KEEP=1 leaves the cluster running
// after the tests (stop it with make hostlab-down); FALCO_PHANTOM_HOSTLAB_REUSE=1
// uses a lab that is already up (make hostlab-up) instead of starting one;
// FALCO_PHANTOM_E2E_FALCO_STANDIN=1 runs the Falco stand-in even where
// Falco is there.
package e2e
