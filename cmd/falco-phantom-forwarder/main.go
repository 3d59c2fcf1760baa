// Command falco-phantom-forwarder forwards Falco events from NATS to Splunk SOAR.
package main

import (
	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/forwarder"
)

func main() { cmdmain.Main(forwarder.Run) }
