// etcd for the test control plane: the server's own entry point, built at the version that
// k8s.io/kubernetes pins (go.etcd.io/etcd/server/v3 in go.sum).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
