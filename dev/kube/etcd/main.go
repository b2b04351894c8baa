// Command etcd runs the etcd server of go.etcd.io/etcd/server/v3, the same
// entry point as the upstream etcd binary, for kube-apiserver's store in the
// dev/test services.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
