// Command kstatus prints how kstatus (sigs.k8s.io/cli-utils), the library Flux, Argo CD
// and kpt judge health with, reads objects: one line "<name> <status>" per object of the
// JSON list (`kubectl get -o json`) read on stdin.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	// apimachinery's decoder keeps integers as int64, as kstatus expects.
	var list unstructured.UnstructuredList
	if err := list.UnmarshalJSON(input); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a JSON list of objects:", err)
		os.Exit(2)
	}
	for i := range list.Items {
		result, err := status.Compute(&list.Items[i])
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", list.Items[i].GetName(), err)
			os.Exit(1)
		}
		fmt.Printf("%s %s\n", list.Items[i].GetName(), result.Status)
	}
}
