// Command coredns is upstream CoreDNS with only the plugins the real node's cluster DNS
// needs (the full build links every cloud provider's SDK and takes minutes more).
// It runs on the host, not as a pod: see hack/cluster/node/up.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The plugins' order in a server block, as upstream's plugin.cfg orders them.
var directives = []string{"bind", "errors", "ready", "cache", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
