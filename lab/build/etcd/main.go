// Command etcd is the etcd server built from the go.etcd.io/etcd/server/v3 module (whose own
// main package lives in the unpublished root module): a wrapper around etcdmain.Main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
