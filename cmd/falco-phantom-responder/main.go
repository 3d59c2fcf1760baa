// Command falco-phantom-responder serves the response actions to SOAR
// playbooks over HTTPS.
package main

import (
	"github.com/falco-phantom/kubectl-falco-phantom/internal/cmdmain"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/cmd/responder"
)

func main() { cmdmain.Main(responder.Run) }
