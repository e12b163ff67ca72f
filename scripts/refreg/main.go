// Command refreg serves go-containerregistry's in-memory registry with the OCI 1.1 referrers
// API switched on (`crane registry serve` has it off), for airlift's referrers tests. It is
// built offline inside the forky chroot by scripts/forky.sh from Debian's
// golang-github-google-go-containerregistry-dev sources.
//
// Usage: refreg ADDR   (for example 127.0.0.1:0; the chosen address is logged to stderr)
package main

import (
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: refreg ADDR")
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving on %s", l.Addr())
	log.Fatal(http.Serve(l, registry.New(registry.WithReferrersSupport(true))))
}
