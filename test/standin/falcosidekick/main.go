// Command falcosidekick-standin stands in for falcosidekick where Falco
// cannot run (the hostlab, tests). Like falcosidekick with its NATS output,
// it takes Falco's JSON alerts by HTTP POST on / (port 2801) and publishes
// each, with a fresh uuid, to NATS on the subject falco.<priority>.<rule>: a
// plain core publish, no JetStream, no retry. It reads falcosidekick's own variables:
// NATS_HOSTPORT, NATS_SUBJECTTEMPLATE, NATS_MINIMUMPRIORITY, LISTENPORT.
// It detects nothing: something must POST the alerts.
package main

import "github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"

func main() { cmdmain.Main(Run) }
